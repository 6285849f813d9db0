//! The engine's own BuildKit, through the Engine API: `POST /build?version=2`
//! beside a [`session`] that serves secrets and registry credentials, with
//! BuildKit's status stream decoded into plain lines ([`progress`]).

pub mod filesync;
pub mod progress;
pub mod proto;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use prost::Message;
use serde::Deserialize;

use super::transport::Dialer;
use super::{BuildSpec, Builder, Log};
use crate::error::{Error, Result};
use crate::secrets::Secrets;
use progress::Progress;
use session::{Services, Session};

/// The Dockerfile's name in the `dockerfile` local (any name does).
const DOCKERFILE: &str = "Dockerfile";

pub struct BuildKit {
    dialer: Arc<Dialer>,
    api_version: String,
    secrets: Secrets,
}

impl BuildKit {
    pub fn new(dialer: Arc<Dialer>, api_version: String, secrets: Secrets) -> BuildKit {
        BuildKit {
            dialer,
            api_version,
            secrets,
        }
    }

    async fn run(&self, spec: BuildSpec, log: Log<'_>) -> Result<()> {
        // The context and the Dockerfile go to BuildKit through the session,
        // from exactly the hashed entries.
        let locals = filesync::Locals::from([
            (
                "context".to_string(),
                filesync::Local::context(&spec.context, &spec.entries),
            ),
            (
                "dockerfile".to_string(),
                filesync::Local::single(DOCKERFILE, spec.dockerfile.bytes.clone()),
            ),
        ]);
        let shared_key = blake3::hash(format!("tagsmith\0{}", spec.context.display()).as_bytes())
            .to_hex()[..32]
            .to_string();
        let session = Session::open(
            &self.dialer,
            &self.api_version,
            Services {
                secrets: self.secrets.clone(),
                locals,
                shared_key,
            },
        )
        .await?;
        let query = query(&spec, &session.id);
        let uri = format!("/v{}/build?{query}", self.api_version);
        let stream = self
            .dialer
            .dial()
            .await
            .map_err(|e| Error::user(format!("connecting to the engine: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::user(format!("connecting to the engine: {e}")))?;
        // Dropped with this future (an interrupt): the engine then sees the
        // client go and cancels the build.
        let _connection = AbortOnDrop(tokio::spawn(conn));
        let request = hyper::Request::post(uri)
            .header("Host", "docker")
            .header("Content-Type", "application/x-tar")
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::user(format!("starting the build: {}", crate::error::chain(&e))))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut progress = Progress::default();
        let mut failure: Option<String> = None;
        let mut pending = Vec::new();
        let mut lines = |bytes: &[u8], failure: &mut Option<String>, progress: &mut Progress| {
            pending.extend_from_slice(bytes);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                handle_line(&line, progress, failure, log);
            }
        };
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        lines(data, &mut failure, &mut progress);
                    }
                }
                Err(e) => {
                    failure.get_or_insert_with(|| format!("the engine stopped answering: {e}"));
                    break;
                }
            }
        }
        lines(b"\n", &mut failure, &mut progress);
        drop(session);
        for (step, error) in progress.cache_import_failures() {
            log(&format!(
                "warning: {step} failed, building without that cache: {error}"
            ));
        }
        if !status.is_success() {
            failure.get_or_insert_with(|| format!("the engine answered {status}"));
        }
        match failure {
            None => Ok(()),
            Some(message) => Err(Error::user(describe_failure(&message, &progress))),
        }
    }
}

impl Builder for BuildKit {
    fn build<'a>(&'a self, spec: BuildSpec, log: Log<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.run(spec, log))
    }
}

/// Aborts a spawned task when dropped (a `JoinHandle` alone would not).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The engine's message, the step that failed and its last lines of output.
fn describe_failure(message: &str, progress: &Progress) -> String {
    let mut text = message.to_string();
    if let Some((step, tail)) = progress.failed_step() {
        text.push_str(&format!("\nfailed step: {step}"));
        for line in tail {
            text.push_str(&format!("\n  {line}"));
        }
    }
    text
}

#[derive(Deserialize)]
struct Line {
    id: Option<String>,
    aux: Option<serde_json::Value>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

fn handle_line(line: &[u8], progress: &mut Progress, failure: &mut Option<String>, log: Log<'_>) {
    let line = line.trim_ascii();
    if line.is_empty() {
        return;
    }
    let Ok(line) = serde_json::from_slice::<Line>(line) else {
        return;
    };
    if let Some(message) = line.error_detail.and_then(|d| d.message).or(line.error) {
        failure.get_or_insert(message);
        return;
    }
    if line.id.as_deref() == Some("moby.buildkit.trace")
        && let Some(serde_json::Value::String(encoded)) = line.aux
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded)
        && let Ok(status) = proto::StatusResponse::decode(bytes.as_slice())
    {
        progress.update(status, &mut |l| log(l));
    }
}

/// The `/build` query: everything but the context.
fn query(spec: &BuildSpec, session: &str) -> String {
    let mut args = spec.args.clone();
    if spec.inline_cache {
        args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
    }
    let mut q: Vec<(&str, String)> = vec![
        ("version", "2".into()),
        ("remote", "client-session".into()),
        ("session", session.into()),
        ("dockerfile", DOCKERFILE.into()),
        ("t", spec.image.to_string()),
        ("buildargs", json(&args)),
        ("labels", json(&spec.labels)),
    ];
    if let Some(t) = &spec.target {
        q.push(("target", t.clone()));
    }
    if let Some(p) = &spec.platform {
        q.push(("platform", p.clone()));
    }
    if spec.no_cache {
        q.push(("nocache", "1".into()));
    }
    if spec.pull {
        q.push(("pull", "1".into()));
    }
    if !spec.cache_from.is_empty() {
        let refs: Vec<String> = spec.cache_from.iter().map(ToString::to_string).collect();
        q.push((
            "cachefrom",
            serde_json::to_string(&refs).expect("serializable"),
        ));
    }
    q.iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn json(map: &HashMap<String, String>) -> String {
    serde_json::to_string(map).expect("serializable")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
