//! A real Docker engine and real registries for the build tests: the CNCF
//! Distribution registry (`docker-registry serve`) on 127.0.0.1 with a free
//! port and a temp storage directory, optionally with htpasswd auth.
//!
//! With `CI=true` a missing engine or registry fails the test; elsewhere the
//! test says loudly that it is skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "tagsmith";
/// Test-only credentials for a registry that lives for one test.
pub const PASSWORD: &str = "tagsmith-test-password";
/// bcrypt (cost 4) of PASSWORD, made with Python's crypt module.
const HTPASSWD: &str = "tagsmith:$2b$04$8HWJqwMirlECYsKt02tRCuLyVq6WRvBhSgskMgVTY5eA3.jtIlb2O\n";

/// Whether the engine and the registry binary are there; panics under CI=true if not.
pub fn available(test: &str) -> bool {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    let registry = Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if engine && registry {
        return true;
    }
    let what = format!(
        "{test}: needs a Docker engine ({engine}) and docker-registry ({registry}); run .ci/run to set them up"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}");
    }
    eprintln!("SKIPPED {what}");
    false
}

pub struct Registry {
    child: Child,
    pub port: u16,
    /// The address it listens on.
    pub ip: String,
    dir: tempfile::TempDir,
}

/// How a test registry serves: TLS with a certificate and key, and
/// (mutual TLS) the CAs client certificates must be signed by.
#[derive(Default)]
pub struct Serving<'a> {
    /// Listen here instead of 127.0.0.1.
    pub ip: Option<&'a str>,
    pub auth: bool,
    pub tls: Option<(&'a Path, &'a Path)>,
    pub client_cas: Option<&'a Path>,
    /// Allow deleting manifests (`storage.delete.enabled`).
    pub delete: bool,
}

impl Registry {
    pub fn start(auth: bool) -> Registry {
        Registry::start_with(auth, false)
    }

    /// A registry that allows deleting manifests (`storage.delete.enabled`).
    pub fn start_with(auth: bool, delete: bool) -> Registry {
        Registry::serve(Serving {
            auth,
            delete,
            ..Serving::default()
        })
    }

    pub fn serve(how: Serving<'_>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let ip = how.ip.unwrap_or("127.0.0.1").to_string();
        let port = TcpListener::bind((ip.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  delete:\n    enabled: {}\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {ip}:{port}\n",
            how.delete,
            dir.path().join("data").display()
        );
        if let Some((cert, key)) = how.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            if let Some(cas) = how.client_cas {
                config.push_str(&format!("    clientcas:\n      - {}\n", cas.display()));
            }
        }
        let auth = how.auth;
        if auth {
            std::fs::write(dir.path().join("htpasswd"), HTPASSWD).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: tagsmith-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", dir.path().join("config.yml").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            child,
            port,
            ip,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let ready = || match how.tls {
            None => registry.get("/v2/", auth).is_some(),
            Some(_) => TcpStream::connect((registry.ip.as_str(), port)).is_ok(),
        };
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "registry on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// The digest the tag points at, read from the registry's storage
    /// (whatever protocol it speaks).
    pub fn stored(&self, repo: &str, tag: &str) -> Option<String> {
        std::fs::read_to_string(self.tag_dir(repo, tag).join("current/link")).ok()
    }

    /// Every manifest the tag has ever pointed at, from the storage's index.
    pub fn tag_history(&self, repo: &str, tag: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.tag_dir(repo, tag).join("index/sha256")) else {
            return Vec::new();
        };
        let mut all: Vec<String> = entries
            .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        all.sort();
        all
    }

    fn tag_dir(&self, repo: &str, tag: &str) -> std::path::PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/repositories")
            .join(repo)
            .join("_manifests/tags")
            .join(tag)
    }

    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// A plain HTTP GET against the registry API: (status, body).
    pub fn get(&self, path: &str, auth: bool) -> Option<(u16, String)> {
        let mut s = TcpStream::connect((self.ip.as_str(), self.port)).ok()?;
        let mut req = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n", self.host());
        if auth {
            req.push_str(&format!(
                "Authorization: Basic {}\r\n",
                base64(&format!("{USER}:{PASSWORD}"))
            ));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let status = resp.split_whitespace().nth(1)?.parse().ok()?;
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    /// The tags of `repo` as the registry lists them, without the cache tag.
    pub fn tags(&self, repo: &str, auth: bool) -> Vec<String> {
        let mut tags = self.all_tags(repo, auth);
        tags.retain(|t| t != "buildcache");
        tags
    }

    /// The manifest digest of `repo:tag`, if the registry has it.
    pub fn digest(&self, repo: &str, tag: &str, auth: bool) -> Option<String> {
        let mut s = TcpStream::connect((self.ip.as_str(), self.port)).ok()?;
        let mut req = format!(
            "HEAD /v2/{repo}/manifests/{tag} HTTP/1.0\r\nHost: {}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json\r\n",
            self.host()
        );
        if auth {
            req.push_str(&format!(
                "Authorization: Basic {}\r\n",
                base64(&format!("{USER}:{PASSWORD}"))
            ));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        if resp.split_whitespace().nth(1)? != "200" {
            return None;
        }
        resp.lines()
            .find_map(|l| l.strip_prefix("Docker-Content-Digest: "))
            .map(|d| d.trim().to_string())
    }

    /// Every tag of `repo` as the registry lists them.
    pub fn all_tags(&self, repo: &str, auth: bool) -> Vec<String> {
        match self.get(&format!("/v2/{repo}/tags/list"), auth) {
            Some((200, body)) => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                v["tags"]
                    .as_array()
                    .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A docker config dir: empty (anonymous), or with `auths` for `host`.
pub fn docker_config(host: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = match host {
        None => "{}".to_string(),
        Some(h) => format!(
            "{{\"auths\": {{\"{h}\": {{\"auth\": \"{}\"}}}}}}",
            base64(&format!("{USER}:{PASSWORD}"))
        ),
    };
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    dir
}

/// Runs tagsmith in `dir` with `DOCKER_CONFIG`.
pub fn tagsmith(dir: &Path, docker_config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(super::bin())
        .args(args)
        .current_dir(dir)
        .env("DOCKER_CONFIG", docker_config)
        .env("TAGSMITH_CACHE_DIR", super::cache_dir())
        .env_remove("GITHUB_OUTPUT")
        .output()
        .unwrap()
}

/// Points a project's config at `registry`.
pub fn use_registry(dir: &Path, registry: &str) {
    let path = dir.join("tagsmith.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("registry:"))
        .unwrap();
    lines[i] = format!("registry: {registry}");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// `name -> status` from a build report.
pub fn statuses(report: &Path) -> std::collections::BTreeMap<String, String> {
    super::by_name(&std::fs::read_to_string(report).unwrap(), "status")
}

/// A local image with busybox (from the busybox-static package) as its
/// only content, for Dockerfiles that RUN something. No image can be pulled.
pub const BUSYBOX: &str = "tagsmith-test/busybox:1";

pub fn busybox() -> &'static str {
    let present = Command::new("docker")
        .args(["image", "inspect", BUSYBOX])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return BUSYBOX;
    }
    let mut tar = tar::Builder::new(Vec::new());
    let bin = std::fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bin.len() as u64);
    tar.append_data(&mut h, "bin/busybox", bin.as_slice())
        .unwrap();
    for tool in [
        "sh", "cat", "echo", "test", "ls", "mkdir", "cp", "sleep", "true", "false", "wc", "grep",
        "head", "tail", "uname", "env", "seq", "printf", "tee",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        tar.append_link(&mut h, format!("bin/{tool}"), "busybox")
            .unwrap();
    }
    for dir in ["tmp", "run", "proc", "dev", "sys", "etc"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .unwrap();
    }
    let bytes = tar.into_inner().unwrap();
    let mut child = Command::new("docker")
        .args(["import", "-c", "ENV PATH=/bin", "-", BUSYBOX])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    assert!(child.wait().unwrap().success(), "docker import");
    BUSYBOX
}

/// Every regular file of an image's file system, with its bytes.
pub fn image_files(image: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let out = Command::new("docker")
        .args(["create", image, "/none"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker create {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let container = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let export = Command::new("docker")
        .args(["export", &container])
        .output()
        .unwrap();
    Command::new("docker")
        .args(["rm", &container])
        .output()
        .unwrap();
    let mut files = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(export.stdout.as_slice())
        .entries()
        .unwrap()
    {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(path, data);
    }
    files
}

/// `docker save` of an image: every layer and its config, as bytes.
pub fn saved(image: &str) -> Vec<u8> {
    let out = Command::new("docker")
        .args(["save", image])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker save {image}");
    out.stdout
}

/// Whether `needle` occurs anywhere in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Removes images, keeping their parents (other tests' builds may use them).
pub fn remove_images(images: &[&str]) {
    for image in images {
        let _ = Command::new("docker")
            .args(["rmi", "--no-prune", "-f", image])
            .output();
    }
}

impl Registry {
    /// PUTs a manifest (or index) under `repo:reference`: (status, body).
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &str,
    ) -> (u16, String) {
        let mut s = TcpStream::connect((self.ip.as_str(), self.port)).unwrap();
        let req = format!(
            "PUT /v2/{repo}/manifests/{reference} HTTP/1.0\r\nHost: {}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\n\r\n{body}",
            self.host(),
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
        (
            status,
            resp.split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default(),
        )
    }

    /// The manifest of `repo:reference` as the registry stores it: (media type, body).
    pub fn manifest(&self, repo: &str, reference: &str) -> (String, String) {
        let mut s = TcpStream::connect((self.ip.as_str(), self.port)).unwrap();
        let req = format!(
            "GET /v2/{repo}/manifests/{reference} HTTP/1.0\r\nHost: {}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\n\r\n",
            self.host()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        let media_type = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .unwrap_or_default()
            .trim()
            .to_string();
        (media_type, body.to_string())
    }
}

/// Builds a FROM-scratch image holding `/marker` = `content` and pushes it
/// as `image` with the docker CLI (the classic builder).
pub fn push_marker_image(image: &str, content: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY marker /marker\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("marker"), content).unwrap();
    let o = Command::new("docker")
        .args(["build", "-q", "-t", image, "."])
        .current_dir(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new("docker")
        .args(["push", image])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker push: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    remove_images(&[image]);
}

/// Removes, on drop, every image of the repositories under `host`: their
/// tags and their digests (an image a later build replaced under a tag
/// keeps its repository digest), keeping parent layers. For the images a
/// test built for its own registry.
pub struct ImagesOf(pub String);

impl Drop for ImagesOf {
    fn drop(&mut self) {
        let prefix = format!("{}/", self.0);
        let out = Command::new("docker")
            .args([
                "images",
                "--digests",
                "--format",
                "{{.Repository}} {{.Tag}} {{.Digest}}",
            ])
            .output();
        let Ok(out) = out else { return };
        let mut refs = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut f = line.split_whitespace();
            let (Some(repo), Some(tag), Some(digest)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if !repo.starts_with(&prefix) {
                continue;
            }
            if tag != "<none>" {
                refs.push(format!("{repo}:{tag}"));
            }
            if digest != "<none>" {
                refs.push(format!("{repo}@{digest}"));
            }
        }
        refs.sort();
        refs.dedup();
        remove_images(&refs.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
