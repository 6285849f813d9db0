//! Engines reached other ways than the local socket, for `tests/engines.rs`:
//! certificates made with openssl, a TLS-terminating proxy in front of the
//! engine's socket (Python's ssl module) that requires a client certificate,
//! sshd with its own config and keys, a Podman service on a temp socket, and
//! docker contexts on disk. Every server is a child process that its guard
//! kills when dropped; every file lives in a temp dir.

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The engine the proxies and the ssh host lead to: the one `docker` uses.
pub const ENGINE_SOCKET: &str = "/var/run/docker.sock";

/// Whether each program runs; panics under CI=true if one does not, else
/// says loudly that `test` is skipped (as [`super::infra::available`]).
pub fn tools(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let what = format!(
        "{test}: needs {} (not found); run .ci/run to install them",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}");
    }
    eprintln!("SKIPPED {what}");
    false
}

/// A program's path: on PATH, or in the sbin directories (sshd).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A port on 127.0.0.1 that nothing listens on (right now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Waits until `ready` holds, or panics naming `what` with its log.
fn wait_until(what: &str, child: &mut Child, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        let log = || fs::read_to_string(log).unwrap_or_default();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited ({status}): {}", log());
        }
        assert!(Instant::now() < deadline, "{what} did not start: {}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM (servers clean up after themselves), then SIGKILL after 5 s.
fn stop(child: &mut Child) {
    if child.try_wait().is_ok_and(|s| s.is_none()) {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().is_ok_and(|s| s.is_none()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------
// Certificates

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A certificate authority made with openssl (EC P-256, valid two days).
pub struct Ca {
    pub cert: PathBuf,
    key: PathBuf,
    dir: tempfile::TempDir,
}

/// A certificate and its key.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("openssl.cnf"), OPENSSL_CNF).unwrap();
        let (cert, key) = (dir.path().join("ca.pem"), dir.path().join("ca-key.pem"));
        sh(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-config",
                "openssl.cnf",
                "-extensions",
                "ca",
            ])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .current_dir(dir.path()));
        Ca { cert, key, dir }
    }

    /// A server certificate for 127.0.0.1 (an IP SAN).
    pub fn server(&self, name: &str) -> Pair {
        self.issue(name, "server")
    }

    /// A client certificate.
    pub fn client(&self, name: &str) -> Pair {
        self.issue(name, "client")
    }

    fn issue(&self, name: &str, extensions: &str) -> Pair {
        let d = self.dir.path();
        let (cert, key, csr) = (
            d.join(format!("{name}.pem")),
            d.join(format!("{name}-key.pem")),
            d.join(format!("{name}.csr")),
        );
        sh(Command::new("openssl")
            .args(["req", "-new", "-config", "openssl.cnf"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-subj", &format!("/CN={name}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .current_dir(d));
        let serial = format!("{}", rand_u32());
        sh(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", &serial])
            .args(["-extfile", "openssl.cnf", "-extensions", extensions])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&self.cert)
            .arg("-CAkey")
            .arg(&self.key)
            .arg("-out")
            .arg(&cert)
            .current_dir(d));
        Pair { cert, key }
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() as u32 & 0x7fff_ffff
}

/// Writes the docker CLI's TLS files into `dir`: `ca.pem`, and the client's
/// `cert.pem` and `key.pem` when given.
pub fn cert_files(dir: &Path, ca: &Ca, client: Option<&Pair>) {
    fs::create_dir_all(dir).unwrap();
    fs::copy(&ca.cert, dir.join("ca.pem")).unwrap();
    if let Some(pair) = client {
        fs::copy(&pair.cert, dir.join("cert.pem")).unwrap();
        fs::copy(&pair.key, dir.join("key.pem")).unwrap();
    }
}

// ---------------------------------------------------------------------------
// A TCP proxy to the engine's socket, plain or TLS-terminating

/// One thread per connection; once TLS is set up, both directions are copied
/// in that one thread (an SSL object must not be used from two threads).
/// As dockerd does, it refuses a bad client certificate with a TLS alert and
/// answers plain HTTP on its TLS port with Go's net/http "400 Bad Request".
const PROXY_PY: &str = r#"
import select, socket, ssl, sys, threading

port, target = int(sys.argv[1]), sys.argv[2]
ctx = None
if len(sys.argv) > 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    ctx.load_verify_locations(sys.argv[5])
    ctx.verify_mode = ssl.CERT_REQUIRED

def relay(client, upstream):
    peer = {client: upstream, upstream: client}
    out = {client: bytearray(), upstream: bytearray()}  # bytes to write to the key
    reading = {client: True, upstream: True}
    half_closed = False
    for s in peer:
        s.setblocking(False)
    while True:
        if not reading[upstream] and not out[client]:
            return  # the engine is done and the client has everything
        if not reading[client] and not out[upstream] and not half_closed:
            upstream.shutdown(socket.SHUT_WR)  # the client is done sending
            half_closed = True
        rlist = [s for s in peer if reading[s] and len(out[peer[s]]) < 1 << 20]
        wlist = [s for s in peer if out[s]]
        ready = [s for s in rlist if isinstance(s, ssl.SSLSocket) and s.pending()]
        writable = []
        if not ready:
            ready, writable, _ = select.select(rlist, wlist, [])
        for s in ready:
            try:
                data = s.recv(1 << 16)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                continue
            except OSError:
                data = b""
            if data:
                out[peer[s]] += data
            else:
                reading[s] = False
        for s in writable:
            try:
                n = s.send(out[s])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                continue
            except OSError:
                return
            del out[s][:n]

def serve(conn):
    try:
        if ctx:
            if conn.recv(1, socket.MSG_PEEK).isalpha():
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
                return
            conn = ctx.wrap_socket(conn, server_side=True)
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(target)
        with upstream:
            relay(conn, upstream)
    except (OSError, ssl.SSLError) as e:
        print("proxy:", e, file=sys.stderr, flush=True)
    finally:
        conn.close()

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(64)
print("ready", flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// A proxy on 127.0.0.1 to [`ENGINE_SOCKET`].
pub struct Proxy {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Proxy {
    /// Plain TCP: `tcp://127.0.0.1:PORT` without TLS.
    pub fn plain() -> Proxy {
        Proxy::start(&[])
    }

    /// TLS with `server`, requiring a client certificate signed by `clients`.
    pub fn tls(server: &Pair, clients: &Ca) -> Proxy {
        Proxy::start(&[&server.cert, &server.key, &clients.cert])
    }

    fn start(tls: &[&Path]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("proxy.py"), PROXY_PY).unwrap();
        let port = free_port();
        let log = dir.path().join("proxy.log");
        let mut child = Command::new("python3")
            .arg(dir.path().join("proxy.py"))
            .arg(port.to_string())
            .arg(ENGINE_SOCKET)
            .args(tls)
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            stop(&mut child);
            panic!(
                "the proxy did not start: {}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Proxy { child, port, dir }
    }

    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

// ---------------------------------------------------------------------------
// sshd

/// sshd on 127.0.0.1 with its own config, host key and authorized key;
/// public-key authentication only. The ssh client finds it through
/// [`Sshd::path`]: OpenSSH reads `~/.ssh/config` from the passwd entry's home,
/// never from `$HOME`, so an `ssh` wrapper first on PATH passes `-F` with the
/// test's client config (IdentityFile, no known-hosts checks) and records its
/// arguments in `argv`.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub user: String,
    pub dir: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        for key in ["host_key", "client_key"] {
            sh(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "tagsmith-test", "-f"])
                .arg(d.join(key)));
        }
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        fs::write(
            d.join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n\
                 PrintMotd no\nLogLevel VERBOSE\n",
                d = d.display()
            ),
        )
        .unwrap();
        let home = d.join("home");
        fs::create_dir_all(home.join(".ssh")).unwrap();
        let client_config = home.join(".ssh/config");
        fs::write(
            &client_config,
            format!(
                "Host *\n  IdentityFile {}/client_key\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking no\n  LogLevel ERROR\n",
                d.display()
            ),
        )
        .unwrap();
        let bin = d.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let ssh = which("ssh").expect("the ssh client");
        write_script(
            &bin.join("ssh"),
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > {d}/argv\nexec {} -F {} \"$@\"\n",
                ssh.display(),
                client_config.display(),
                d = d.display()
            ),
        );
        // Privilege separation needs this directory when sshd runs as root.
        if user == "root" {
            fs::create_dir_all("/run/sshd").unwrap();
        }
        let log = d.join("sshd.log");
        let mut child = Command::new(which("sshd").expect("sshd"))
            .args(["-D", "-f"])
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd runs");
        wait_until("sshd", &mut child, &log, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Sshd {
            child,
            port,
            user,
            dir,
        }
    }

    /// `ssh://user@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ssh://{}@127.0.0.1:{}", self.user, self.port)
    }

    /// PATH with the `ssh` wrapper first.
    pub fn path(&self) -> OsString {
        let mut dirs = vec![self.dir.path().join("bin")];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        std::env::join_paths(dirs).unwrap()
    }

    /// The arguments tagsmith last gave `ssh`.
    pub fn argv(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("argv"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------
// Podman

/// `podman system service` on a temp socket, with its own storage (vfs, so
/// nothing is mounted), run and tmp directories: nothing is shared with the
/// machine's own Podman.
pub struct Podman {
    child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Podman {
    pub fn start() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let socket = d.join("podman.sock");
        let log = d.join("podman.log");
        let mut child = Command::new("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file", "--log-level", "error"])
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("podman runs");
        let ping = socket.clone();
        wait_until("podman system service", &mut child, &log, || {
            http_get_unix(&ping, "/_ping").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        });
        Podman { child, socket, dir }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Whether the service has `image` (`GET /images/{name}/json`).
    pub fn has_image(&self, image: &str) -> bool {
        http_get_unix(&self.socket, &format!("/images/{image}/json"))
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A GET over a unix socket; the whole response.
pub fn http_get_unix(socket: &Path, path: &str) -> Option<String> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    Some(resp)
}

// ---------------------------------------------------------------------------
// Docker contexts

/// The docker CLI's context store directory name: hex SHA-256 of the name.
pub fn context_digest(name: &str) -> String {
    let o = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(name.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}

/// Writes context `name` with `host` into `config_dir` as `docker context
/// create` does: `contexts/meta/<digest>/meta.json`; with `tls`, the files
/// go to `contexts/tls/<digest>/docker/`. Returns that TLS directory.
pub fn write_context(
    config_dir: &Path,
    name: &str,
    host: &str,
    tls: Option<(&Ca, Option<&Pair>)>,
) -> PathBuf {
    let digest = context_digest(name);
    let meta = config_dir.join("contexts/meta").join(&digest);
    fs::create_dir_all(&meta).unwrap();
    fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Metadata":{{"Description":"tagsmith test"}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
        ),
    )
    .unwrap();
    let tls_dir = config_dir.join("contexts/tls").join(&digest).join("docker");
    if let Some((ca, client)) = tls {
        cert_files(&tls_dir, ca, client);
    }
    tls_dir
}

// ---------------------------------------------------------------------------
// Running tagsmith and cleaning up

/// Runs tagsmith in `dir` with only the given engine variables: every
/// `DOCKER_*` variable of the test's own environment is removed first, and
/// `DOCKER_CONFIG` is an empty temp config unless `env` names one.
pub fn tagsmith(dir: &Path, env: &[(&str, &OsString)], args: &[&str]) -> Output {
    let empty = super::infra::docker_config(None);
    let mut cmd = Command::new(super::bin());
    cmd.args(args).current_dir(dir).env_remove("GITHUB_OUTPUT");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DOCKER_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env("DOCKER_CONFIG", empty.path());
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

/// Asserts a user error: exit 1, nothing on stdout, one line on stderr
/// holding every piece of `want`, no panic. Returns the line.
pub fn one_error(o: &Output, want: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        o.status.code(),
        Some(1),
        "exit code; stdout {:?} stderr {err:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        o.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one message: {err:?}");
    for piece in want {
        assert!(err.contains(piece), "{piece:?} not in {err:?}");
    }
    err
}

/// Asserts success; returns stderr.
pub fn succeeded(o: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{what}: {err}");
    err
}

/// A single-service project (`app`, FROM scratch) whose images go to
/// `localhost/tagsmith-test-engines-<pid>-<name>/app`; the returned guard
/// removes them from the Docker engine.
pub fn project(name: &str) -> (tempfile::TempDir, DockerImages) {
    let dir = super::single(None);
    let prefix = format!(
        "localhost/tagsmith-test-engines-{}-{name}",
        std::process::id()
    );
    super::infra::use_registry(dir.path(), &prefix);
    super::write(&dir.path().join("ctx/test.txt"), name);
    (dir, DockerImages(prefix))
}

/// Removes the Docker engine's images under a prefix when dropped.
pub struct DockerImages(pub String);

impl Drop for DockerImages {
    fn drop(&mut self) {
        let Ok(o) = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
        else {
            return;
        };
        for image in String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|i| i.starts_with(&format!("{}/", self.0)))
        {
            let _ = Command::new("docker")
                .args(["rmi", "--no-prune", image])
                .output();
        }
    }
}
