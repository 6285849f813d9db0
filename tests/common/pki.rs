//! Certificates for HTTPS registries, made with openssl for one test: a CA
//! and a server certificate it signs (for the given IPs and names), and a
//! second CA with a client certificate (mutual TLS). Also the machine-wide
//! places the Docker engine reads, changed for a test and restored by Drop
//! guards: `/etc/docker/certs.d/<host:port>/` and `/etc/hosts`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Whether openssl is there (besides `faults::available`'s needs); panics
/// under CI=true if not.
pub fn available(test: &str) -> bool {
    if !super::faults::available(test) {
        return false;
    }
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    // The engine reads certs.d and resolves names through /etc/hosts: the
    // tests write both, so they run as root.
    let writable = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if openssl && writable {
        return true;
    }
    let what = format!(
        "{test}: needs openssl ({openssl}) and root, to write /etc/docker/certs.d and /etc/hosts ({writable}); run .ci/run as root"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}");
    }
    eprintln!("SKIPPED {what}");
    false
}

pub struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn ca(dir: &Path, name: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={subject}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn leaf(dir: &Path, name: &str, cert: &str, ca: &str, subject: &str, extensions: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={subject}"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            cert,
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

impl Pki {
    /// A CA (`ca.crt`), a server certificate (`server.crt`, `server.key`)
    /// for `ips` and `names`, a client CA (`client-ca.crt`) and a client
    /// certificate it signs (`client.cert`, `client.key`: the names
    /// certs.d wants).
    pub fn new(ips: &[&str], names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ca(d, "ca", "tagsmith test CA");
        let san: Vec<String> = ips
            .iter()
            .map(|i| format!("IP:{i}"))
            .chain(names.iter().map(|n| format!("DNS:{n}")))
            .collect();
        leaf(
            d,
            "server",
            "server.crt",
            "ca",
            names.first().or(ips.first()).unwrap(),
            &format!(
                "subjectAltName={}\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
                san.join(",")
            ),
        );
        ca(d, "client-ca", "tagsmith test client CA");
        leaf(
            d,
            "client",
            "client.cert",
            "client-ca",
            "tagsmith test client",
            "extendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
        );
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `/etc/docker/certs.d/<host>/` with copies of some files, for one test;
/// removed on drop (it must not exist before), and certs.d itself too if a
/// test made it and it is left empty.
pub struct CertsD {
    pub dir: PathBuf,
}

const CERTS_D: &str = "/etc/docker/certs.d";

/// Serialises this process's edits of certs.d.
static CERTS_D_LOCK: Mutex<bool> = Mutex::new(false);

impl CertsD {
    /// `files`: (source, name in the directory).
    pub fn install(host: &str, files: &[(PathBuf, &str)]) -> CertsD {
        let mut made = CERTS_D_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if !Path::new(CERTS_D).exists() {
            std::fs::create_dir_all(CERTS_D).unwrap();
            *made = true;
        }
        let dir = Path::new(CERTS_D).join(host);
        assert!(!dir.exists(), "{} exists already", dir.display());
        std::fs::create_dir(&dir).unwrap();
        let guard = CertsD { dir };
        for (from, name) in files {
            std::fs::copy(from, guard.dir.join(name)).unwrap();
        }
        guard
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let made = CERTS_D_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::fs::remove_dir_all(&self.dir);
        if *made {
            // Only if empty: another test's directory may be in it.
            let _ = std::fs::remove_dir(CERTS_D);
        }
    }
}

/// Serialises this process's edits of /etc/hosts.
static HOSTS: Mutex<()> = Mutex::new(());

/// A line `<ip> <name>` in /etc/hosts for one test; removed on drop.
pub struct HostsEntry {
    line: String,
    added: std::time::Instant,
}

impl HostsEntry {
    pub fn add(ip: &str, name: &str) -> HostsEntry {
        let line = format!("{ip} {name} # tagsmith test {}", std::process::id());
        let _lock = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
        let text = std::fs::read_to_string("/etc/hosts").unwrap();
        let mut text = text;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);
        text.push('\n');
        // In place: /etc/hosts may be a mount point that cannot be renamed over.
        std::fs::write("/etc/hosts", text).unwrap();
        HostsEntry {
            line,
            added: std::time::Instant::now(),
        }
    }

    /// Waits until the engine sees the entry: Go's resolver (dockerd's)
    /// re-reads /etc/hosts only when its copy is 5 s old.
    pub fn settle(&self) {
        let wait = std::time::Duration::from_millis(5500);
        if let Some(left) = wait.checked_sub(self.added.elapsed()) {
            std::thread::sleep(left);
        }
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        let _lock = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(text) = std::fs::read_to_string("/etc/hosts") {
            let kept: String = text
                .lines()
                .filter(|l| *l != self.line)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write("/etc/hosts", kept);
        }
    }
}

/// An IPv4 address of this machine outside 127.0.0.0/8 (which Docker
/// treats as insecure), for registries whose certificates must be verified.
pub fn outside_ip() -> Option<String> {
    let o = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback() && !ip.is_link_local())
        })
        .map(str::to_string)
}
