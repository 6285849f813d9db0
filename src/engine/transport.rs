//! Byte streams to the engine for every kind of address — a unix socket,
//! TCP with or without TLS, and `ssh … docker system dial-stdio` — under
//! one hyper connector. Both the Engine API client (bollard, through its
//! custom transport) and the BuildKit session (an HTTP upgrade) use it, so
//! every engine kind works for every feature.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::endpoint::{Address, Endpoint, Tls};
use crate::error::{Error, Result};

/// Anything a connection to the engine can be.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One connection to the engine.
pub struct Stream(Box<dyn Io>);

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Opens connections to one engine.
pub struct Dialer {
    address: Address,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// The last `ssh` process started, for error messages.
    ssh_last: Mutex<Option<Arc<SshProcess>>>,
}

impl Dialer {
    /// Reads the TLS material now, so that a bad file is one clear error.
    pub fn new(endpoint: &Endpoint) -> Result<Dialer> {
        let tls = match &endpoint.address {
            Address::Tcp {
                host,
                tls: Some(tls),
                ..
            } => {
                let name = ServerName::try_from(host.clone()).map_err(|_| {
                    Error::user(format!(
                        "engine address {}: \"{host}\" is not a valid TLS server name",
                        endpoint.host
                    ))
                })?;
                Some((
                    Arc::new(client_config(tls, endpoint.from_docker_host())?),
                    name,
                ))
            }
            _ => None,
        };
        Ok(Dialer {
            address: endpoint.address.clone(),
            tls,
            ssh_last: Mutex::default(),
        })
    }

    pub async fn dial(&self) -> io::Result<Stream> {
        match &self.address {
            Address::Unix(path) => Ok(Stream(Box::new(
                tokio::net::UnixStream::connect(path).await?,
            ))),
            Address::Tcp { host, port, .. } => {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                tcp.set_nodelay(true)?;
                match &self.tls {
                    None => Ok(Stream(Box::new(tcp))),
                    Some((config, name)) => {
                        let tls = tokio_rustls::TlsConnector::from(config.clone())
                            .connect(name.clone(), tcp)
                            .await?;
                        Ok(Stream(Box::new(tls)))
                    }
                }
            }
            Address::Ssh {
                user,
                host,
                port,
                socket,
            } => self.ssh(user.as_deref(), host, *port, socket.as_deref()),
        }
    }

    /// `ssh [-l user] [-p port] -o ConnectTimeout=30 -T -- host <docker … dial-stdio>`,
    /// speaking HTTP over its stdin and stdout, one process per connection.
    fn ssh(
        &self,
        user: Option<&str>,
        host: &str,
        port: Option<u16>,
        socket: Option<&str>,
    ) -> io::Result<Stream> {
        let mut child = tokio::process::Command::new("ssh")
            .args(ssh_args(user, host, port, socket))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run ssh: {e} (is the OpenSSH client installed?)"),
                )
            })?;
        let (stdin, stdout, mut stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        let (status_tx, status) = tokio::sync::watch::channel(None);
        let process = Arc::new(SshProcess {
            stderr: Mutex::default(),
            status,
        });
        *self.ssh_last.lock().unwrap() = Some(process.clone());
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        // Owns the process: collects its stderr and its exit status, and
        // kills it when the connection is dropped.
        tokio::spawn(async move {
            let read = async {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    process.stderr.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            };
            let wait = async {
                tokio::select! {
                    status = child.wait() => status,
                    _ = killed => {
                        // Its stdin is closed now: let it end by itself (and
                        // say why it failed), as the docker CLI does, then kill it.
                        match tokio::time::timeout(Duration::from_secs(3), child.wait()).await {
                            Ok(status) => status,
                            Err(_) => {
                                let _ = child.start_kill();
                                child.wait().await
                            }
                        }
                    }
                }
            };
            let (_, status) = tokio::join!(read, wait);
            let _ = status_tx.send(Some(status.ok()));
        });
        Ok(Stream(Box::new(SshStream {
            _kill: kill,
            io: tokio::io::join(stdout, stdin),
        })))
    }

    /// Why the last `ssh` process failed, if it did: its exit status and what
    /// it said on stderr. Waits a little for it to end (its stdout closes
    /// before it has exited and before its stderr has been read).
    pub async fn ssh_failure(&self) -> Option<SshFailure> {
        let process = self.ssh_last.lock().unwrap().clone()?;
        let mut status = process.status.clone();
        let _ =
            tokio::time::timeout(Duration::from_secs(4), status.wait_for(Option::is_some)).await;
        let status = *status.borrow();
        let said = String::from_utf8_lossy(&process.stderr.lock().unwrap())
            .trim()
            .replace('\n', " ")
            .replace('\r', "");
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        match status.flatten() {
            Some(status) if !status.success() => {
                use std::os::unix::process::ExitStatusExt;
                let how = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exit status {code}"),
                    (None, Some(signal)) => format!("signal {signal}"),
                    (None, None) => status.to_string(),
                };
                Some(SshFailure {
                    message: format!("ssh failed ({how}){said}"),
                    connection: status.code() == Some(255),
                })
            }
            _ if !said.is_empty() => Some(SshFailure {
                message: format!("ssh said{said}"),
                connection: false,
            }),
            _ => None,
        }
    }
}

/// How an `ssh` process failed.
pub struct SshFailure {
    /// `ssh failed (exit status 255): <what it said>`.
    pub message: String,
    /// Whether ssh itself failed (exit status 255: connecting, logging in),
    /// not the command it ran.
    pub connection: bool,
}

/// The `ssh` arguments for an engine, as the docker CLI passes them (plus
/// `BatchMode`: a connection never waits for a password prompt).
pub fn ssh_args(
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
    socket: Option<&str>,
) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(u) = user {
        args.extend(["-l".to_string(), u.to_string()]);
    }
    if let Some(p) = port {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    let remote = match socket {
        Some(path) => format!("docker --host=unix://{path} system dial-stdio"),
        None => "docker system dial-stdio".to_string(),
    };
    args.extend(
        [
            "-o",
            "ConnectTimeout=30",
            "-o",
            "BatchMode=yes",
            "-T",
            "--",
            host,
        ]
        .map(String::from),
    );
    args.push(remote);
    args
}

/// One `ssh` process: what it said on stderr, and its exit status once it
/// has ended (`Some(None)` if waiting for it failed).
struct SshProcess {
    stderr: Mutex<Vec<u8>>,
    status: tokio::sync::watch::Receiver<Option<Option<std::process::ExitStatus>>>,
}

struct SshStream {
    /// Dropping it ends the process.
    _kill: tokio::sync::oneshot::Sender<()>,
    io: tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>,
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// rustls settings as the docker CLI uses them: `ca.pem` as the only root
/// when given (else the system's), the client pair when given. `from_env`:
/// the settings come from `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`.
fn client_config(tls: &Tls, from_env: bool) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
    let builder = if !tls.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca {
            Some(ca) => {
                if !ca.exists() && from_env {
                    return Err(Error::user(format!(
                        "{}: not found; with DOCKER_TLS_VERIFY set, the engine's CA \
                         certificate must be there (set DOCKER_CERT_PATH to the directory \
                         holding ca.pem, cert.pem and key.pem)",
                        crate::paths::Shown(ca)
                    )));
                }
                let certs = read_certs(ca)?;
                for c in certs {
                    roots.add(c).map_err(|e| {
                        Error::file(ca, format!("not a usable CA certificate: {e}"))
                    })?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    match &tls.identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::file(key, format!("not a PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::file(cert, format!("unusable client certificate: {e}")))
        }
    }
}

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<_, _>>())
        .map_err(|e| match e {
            rustls::pki_types::pem::Error::Io(io) => Error::io(path, io),
            e => Error::file(path, format!("not a PEM certificate: {e}")),
        })?;
    if certs.is_empty() {
        return Err(Error::file(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// `DOCKER_TLS` without `DOCKER_TLS_VERIFY`: encrypted, not authenticated,
/// exactly as the docker CLI does it.
#[derive(Debug)]
struct NoVerification;

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The hyper connector: every URI goes to the one engine.
#[derive(Clone)]
pub struct Connector(pub Arc<Dialer>);

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let dialer = self.0.clone();
        Box::pin(async move { dialer.dial().await.map(TokioIo::new) })
    }
}

/// What went wrong talking to the engine, as far as the fix is concerned,
/// read from the error's chain (rustls, I/O and hyper errors by type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A TLS hello was answered with something that is not TLS (plain HTTP).
    NotTls,
    /// The engine's certificate is not signed by a trusted CA.
    UnknownIssuer,
    /// The engine's certificate is for other names.
    WrongName,
    /// The engine's certificate has expired or is not valid yet.
    Expired,
    /// The engine's certificate is unusable for another reason.
    BadCertificate,
    /// The engine refused the TLS client (a certificate alert).
    ClientRefused,
    /// The connection ended before an answer (on TLS: without an alert).
    Closed,
    /// The answer is not HTTP.
    NotHttp,
    /// A plain HTTP request was answered with 400 (a TLS-only port does that).
    BadRequest,
    /// Nothing listens there.
    Refused,
    /// No such socket.
    NoSocket,
    /// No permission to use the socket.
    PermissionDenied,
    Other,
}

impl Failure {
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Failure {
        use rustls::{AlertDescription as A, CertificateError as C, Error as R};
        let mut next = Some(e);
        while let Some(err) = next {
            let io = err.downcast_ref::<io::Error>();
            let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
                io.and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            });
            if let Some(tls) = tls {
                return match tls {
                    R::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
                        Failure::NotTls
                    }
                    R::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
                        Failure::UnknownIssuer
                    }
                    R::InvalidCertificate(
                        C::NotValidForName | C::NotValidForNameContext { .. },
                    ) => Failure::WrongName,
                    R::InvalidCertificate(
                        C::Expired
                        | C::ExpiredContext { .. }
                        | C::NotValidYet
                        | C::NotValidYetContext { .. },
                    ) => Failure::Expired,
                    R::InvalidCertificate(_) => Failure::BadCertificate,
                    R::AlertReceived(
                        A::CertificateRequired
                        | A::BadCertificate
                        | A::UnsupportedCertificate
                        | A::CertificateRevoked
                        | A::CertificateExpired
                        | A::CertificateUnknown
                        | A::UnknownCA
                        | A::AccessDenied
                        | A::DecryptError
                        | A::HandshakeFailure,
                    ) => Failure::ClientRefused,
                    _ => Failure::Other,
                };
            }
            if let Some(io) = io {
                match io.kind() {
                    io::ErrorKind::ConnectionRefused => return Failure::Refused,
                    io::ErrorKind::NotFound => return Failure::NoSocket,
                    io::ErrorKind::PermissionDenied => return Failure::PermissionDenied,
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                        return Failure::Closed;
                    }
                    _ => {}
                }
            }
            if let Some(h) = err.downcast_ref::<hyper::Error>() {
                if h.is_incomplete_message() {
                    return Failure::Closed;
                }
                if h.is_parse() {
                    return Failure::NotHttp;
                }
            }
            next = err.source();
        }
        Failure::Other
    }
}

/// The innermost cause of a failed request, without the HTTP client's
/// wrapping (`client error (Connect)`, `connection error`).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    let text = last.to_string();
    // rustls points at its manual for a TLS connection closed without close_notify.
    match text.split_once(": https://") {
        Some((before, _)) => before.to_string(),
        None => text,
    }
}

/// Sends one request on a connection of its own. A failure is the
/// connection's own error (a TLS alert, ssh ending, a reset) rather than a
/// pooled client's "connection was not ready": with TLS 1.3 an engine
/// refuses a client certificate only after the handshake, and its alert may
/// end the connection before the request is written.
pub async fn request<B>(
    dialer: &Dialer,
    request: hyper::Request<B>,
) -> std::result::Result<hyper::Response<hyper::body::Incoming>, BoxError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = dialer.dial().await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    match sender.send_request(request).await {
        Ok(response) => Ok(response),
        Err(e) => match tokio::time::timeout(Duration::from_secs(2), conn).await {
            Ok(Ok(Err(cause))) => Err(cause.into()),
            _ => Err(e.into()),
        },
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The first line of a response body, briefly (what arrived before the
/// connection ended, within two seconds), or nothing.
pub async fn first_line(mut body: hyper::body::Incoming) -> String {
    use http_body_util::BodyExt;
    let mut bytes = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while bytes.len() < 4096 {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_error(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn failures_are_read_by_type() {
        use rustls::{AlertDescription as A, CertificateError as C, Error as R};
        for (e, want) in [
            (
                tls_error(R::AlertReceived(A::CertificateRequired)),
                Failure::ClientRefused,
            ),
            (
                tls_error(R::AlertReceived(A::BadCertificate)),
                Failure::ClientRefused,
            ),
            (
                tls_error(R::InvalidCertificate(C::UnknownIssuer)),
                Failure::UnknownIssuer,
            ),
            (
                tls_error(R::InvalidCertificate(C::NotValidForName)),
                Failure::WrongName,
            ),
            (
                tls_error(R::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType,
                )),
                Failure::NotTls,
            ),
            (
                io::Error::from(io::ErrorKind::ConnectionRefused),
                Failure::Refused,
            ),
            (io::Error::from(io::ErrorKind::NotFound), Failure::NoSocket),
        ] {
            // As the HTTP client wraps it: an error whose source is the I/O error.
            #[derive(Debug)]
            struct Wrapped(io::Error);
            impl std::fmt::Display for Wrapped {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("client error (Connect)")
                }
            }
            impl std::error::Error for Wrapped {
                fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                    Some(&self.0)
                }
            }
            let text = e.to_string();
            let wrapped = Wrapped(e);
            assert_eq!(Failure::of(&wrapped), want, "{text}");
            assert_eq!(root_cause(&wrapped), text);
        }
    }

    #[test]
    fn root_cause_drops_the_manual_link() {
        let e = io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify: \
             https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
        );
        assert_eq!(
            root_cause(&e),
            "peer closed connection without sending TLS close_notify"
        );
        assert_eq!(Failure::of(&e), Failure::Closed);
    }

    #[test]
    fn ssh_arguments_are_the_docker_clis() {
        assert_eq!(
            ssh_args(Some("me"), "build.example", Some(2222), Some("/run/d.sock")),
            [
                "-l",
                "me",
                "-p",
                "2222",
                "-o",
                "ConnectTimeout=30",
                "-o",
                "BatchMode=yes",
                "-T",
                "--",
                "build.example",
                "docker --host=unix:///run/d.sock system dial-stdio"
            ]
        );
        assert_eq!(
            ssh_args(None, "h", None, None),
            [
                "-o",
                "ConnectTimeout=30",
                "-o",
                "BatchMode=yes",
                "-T",
                "--",
                "h",
                "docker system dial-stdio"
            ]
        );
    }
}
