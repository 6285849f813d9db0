//! A BuildKit session served to the engine: `POST /session` upgraded to h2c,
//! after which the engine's BuildKit is the gRPC client and tagsmith the
//! server, on the same connection. It serves health checks (BuildKit drops a
//! session that does not answer them), build secrets, registry credentials
//! and, for the build context, FileSync.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use prost::Message;

use super::filesync::{self, Locals};
use super::proto::*;
use crate::engine::transport::Dialer;
use crate::error::{Error, Result};
use crate::registry::Credentials;
use crate::secrets::Secrets;

const HEALTH: &str = "/grpc.health.v1.Health/Check";
const GET_SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";
const CREDENTIALS: &str = "/moby.filesync.v1.Auth/Credentials";

/// gRPC status codes tagsmith answers with.
const INVALID_ARGUMENT: u32 = 3;
const NOT_FOUND: u32 = 5;
const UNIMPLEMENTED: u32 = 12;

/// What a session answers with.
pub struct Services {
    pub secrets: Secrets,
    /// The build's context and Dockerfile, by local name.
    pub locals: Locals,
    /// Names BuildKit's reusable copy of the locals between builds.
    pub shared_key: String,
}

/// An open session; dropping it ends it.
pub struct Session {
    pub id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Session {
    /// Opens a session on a new connection to the engine; returns once the
    /// engine has switched protocols.
    pub async fn open(
        dialer: &Dialer,
        api_version: &str,
        mut services: Services,
    ) -> Result<Session> {
        let id = random_id();
        let stream = dialer
            .dial()
            .await
            .map_err(|e| Error::user(format!("opening a BuildKit session: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::user(format!("opening a BuildKit session: {e}")))?;
        tokio::spawn(conn.with_upgrades());
        let mut request = hyper::Request::post(format!("/v{api_version}/session"))
            .header("Host", "docker")
            .header("Upgrade", "h2c")
            .header("Connection", "Upgrade")
            .header("X-Docker-Expose-Session-Uuid", &id)
            .header("X-Docker-Expose-Session-Name", "tagsmith")
            .header("X-Docker-Expose-Session-Sharedkey", &services.shared_key);
        for method in [HEALTH, GET_SECRET, CREDENTIALS, filesync::DIFF_COPY] {
            request = request.header("X-Docker-Expose-Session-Grpc-Method", method);
        }
        let response = sender
            .send_request(
                request
                    .body(Empty::<Bytes>::new())
                    .expect("a valid request"),
            )
            .await
            .map_err(|e| Error::user(format!("opening a BuildKit session: {e}")))?;
        if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::user(format!(
                "the engine offers no BuildKit session (POST /session answered {}); use the classic builder (--builder classic)",
                response.status()
            )));
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| Error::user(format!("opening a BuildKit session: {e}")))?;
        let locals = Arc::new(std::mem::take(&mut services.locals));
        let services = Arc::new(Served {
            services,
            locals,
            credentials: Mutex::default(),
        });
        let task = tokio::spawn(async move {
            // The session ends when the build does; errors after that are noise.
            let _ = serve(TokioIo::new(upgraded), services).await;
        });
        Ok(Session { id, task })
    }
}

struct Served {
    services: Services,
    locals: Arc<Locals>,
    /// Credentials by host, looked up once per session (helpers are processes).
    credentials: Mutex<HashMap<String, (String, String)>>,
}

async fn serve(
    io: TokioIo<hyper::upgrade::Upgraded>,
    served: Arc<Served>,
) -> std::result::Result<(), h2::Error> {
    // The peer is the engine this run started the build on. FileSync's
    // receiver asks for each file in a small DATA frame of its own, many at
    // once; h2's budget for buffered small frames (25,600 bytes, meant for
    // abusive clients) ended the session on contexts of a few thousand
    // files (GOAWAY ENHANCE_YOUR_CALM, "context canceled" in the build).
    let mut conn = h2::server::Builder::new()
        .data_frame_budget(64 << 20)
        .handshake(io)
        .await?;
    while let Some(request) = conn.accept().await {
        let (request, respond) = request?;
        let served = served.clone();
        if request.uri().path() == filesync::DIFF_COPY {
            tokio::spawn(filesync::serve(request, respond, served.locals.clone()));
            continue;
        }
        tokio::spawn(async move {
            let path = request.uri().path().to_string();
            let reply = match read_unary(request.into_body()).await {
                Ok(body) => tokio::task::spawn_blocking(move || served.answer(&path, &body))
                    .await
                    .unwrap_or_else(|_| Err((UNIMPLEMENTED, "the handler failed".into()))),
                Err(e) => Err((INVALID_ARGUMENT, e)),
            };
            let _ = respond_unary(respond, reply);
        });
    }
    Ok(())
}

type Reply = std::result::Result<Vec<u8>, (u32, String)>;

impl Served {
    fn answer(&self, path: &str, body: &[u8]) -> Reply {
        let bad = |e: prost::DecodeError| (INVALID_ARGUMENT, e.to_string());
        match path {
            HEALTH => Ok(HealthCheckResponse { status: 1 }.encode_to_vec()),
            GET_SECRET => {
                let request = GetSecretRequest::decode(body).map_err(bad)?;
                match self.services.secrets.get(&request.id) {
                    Some(data) => Ok(GetSecretResponse {
                        data: data.to_vec(),
                    }
                    .encode_to_vec()),
                    None => Err((NOT_FOUND, format!("secret {} not found", request.id))),
                }
            }
            CREDENTIALS => {
                let request = CredentialsRequest::decode(body).map_err(bad)?;
                let (username, secret) = self.credentials(&request.host);
                Ok(CredentialsResponse { username, secret }.encode_to_vec())
            }
            _ => Err((UNIMPLEMENTED, format!("{path} is not served"))),
        }
    }

    /// The docker CLI's answer: a user and password, or an empty user and
    /// an identity token, or nothing (anonymous).
    fn credentials(&self, host: &str) -> (String, String) {
        if let Some(c) = self.credentials.lock().unwrap().get(host) {
            return c.clone();
        }
        // Docker Hub's API host is keyed in the docker config as the index.
        let key = match host {
            "registry-1.docker.io" | "docker.io" | "index.docker.io" => {
                "https://index.docker.io/v1/"
            }
            h => h,
        };
        let answer = match Credentials::for_host(key).unwrap_or_default() {
            Credentials::Anonymous => Default::default(),
            Credentials::Basic { username, password } => (username, password),
            Credentials::IdentityToken(token) => (String::new(), token),
        };
        self.credentials
            .lock()
            .unwrap()
            .insert(host.to_string(), answer.clone());
        answer
    }
}

/// A unary request's message: a 1-byte compression flag, a u32 length, the bytes.
async fn read_unary(mut body: h2::RecvStream) -> std::result::Result<Vec<u8>, String> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
    }
    match buf.as_ref() {
        [0, a, b, c, d, rest @ ..]
            if u32::from_be_bytes([*a, *b, *c, *d]) as usize == rest.len() =>
        {
            Ok(rest.to_vec())
        }
        _ => Err("not an uncompressed gRPC message".into()),
    }
}

fn respond_unary(
    mut respond: h2::server::SendResponse<Bytes>,
    reply: Reply,
) -> std::result::Result<(), h2::Error> {
    let head = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc");
    match reply {
        Ok(message) => {
            let mut stream =
                respond.send_response(head.body(()).expect("a valid response"), false)?;
            stream.send_data(frame(&message), false)?;
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            stream.send_trailers(trailers)
        }
        Err((code, message)) => {
            let response = head
                .header("grpc-status", code.to_string())
                .header("grpc-message", percent_encode(&message))
                .body(())
                .expect("a valid response");
            respond.send_response(response, true).map(|_| ())
        }
    }
}

/// A gRPC length-prefixed message.
pub fn frame(message: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + message.len());
    buf.put_u8(0);
    buf.put_u32(message.len() as u32);
    buf.put_slice(message);
    buf.freeze()
}

/// `grpc-message` is percent-encoded outside printable ASCII.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            0x20..=0x7e if b != b'%' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A session id: 128 random bits as hex (from the OS, via the hasher's seed).
fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
