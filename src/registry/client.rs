//! The registry HTTP client, as the Docker engine talks to registries:
//!
//! * HTTPS first; plain HTTP only as a fallback for insecure registries
//!   (loopback addresses and `insecure_registries`), which are also not
//!   verified, as Docker does.
//! * Trust: the system's roots plus `/etc/docker/certs.d/<host>/*.crt`, and
//!   a client certificate from `*.cert`/`*.key` there (mutual TLS).
//! * Auth: the host's challenge is learned once (`GET /v2/`); Basic
//!   credentials are sent as they are; Bearer tokens are fetched per scope,
//!   shared by every request of that scope (one fetch even when many wait),
//!   and fetched again once if the registry rejects one.
//! * Retries: connection failures, timeouts, resets, 5xx, 429 (after its
//!   `Retry-After`) and truncated bodies are retried with backoff until the
//!   call's deadline; every other answer is final.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use super::Credentials;
use crate::error::{RegistryError, Result};
use crate::tls::{self, Trust};

/// Where Docker keeps per-registry certificates.
pub const CERTS_D: &str = "/etc/docker/certs.d";

/// How long one registry call (with its retries) may take, by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// Requests in flight to one host at most.
const PER_HOST: usize = 16;

/// A response that arrived whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Bytes,
}

/// What one request asks for.
pub struct Call<'a> {
    pub method: Method,
    pub host: &'a str,
    /// From `/v2/…` on, with its query.
    pub path: String,
    /// The token scope, e.g. `repository:team/api:pull`.
    pub scope: String,
    pub accept: Option<&'a str>,
    /// Describes the call in messages: "checking r/x:1".
    pub what: String,
}

#[derive(Clone)]
enum Challenge {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// What a host speaks, as far as is known.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// An insecure host not reached yet: HTTPS is tried first, then HTTP.
    Unknown,
    Https,
    Http,
}

struct Host {
    /// `host[:port]`, as references name it.
    name: String,
    /// Whether certs.d gave a client certificate.
    client_cert: bool,
    https: reqwest::Client,
    /// For insecure hosts: plain HTTP, used once HTTPS has failed.
    http: Option<reqwest::Client>,
    /// Decided once, by the first exchange that gets an answer: a host
    /// whose HTTPS works is never asked over HTTP again.
    scheme: Mutex<Scheme>,
    challenge: tokio::sync::OnceCell<Challenge>,
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<String>>>>>,
    slots: tokio::sync::Semaphore,
}

pub struct Client {
    insecure: Vec<String>,
    certs_d: PathBuf,
    deadline: Duration,
    /// Each host set up once, however many calls start at the same time.
    hosts: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Host>>>>>,
    credentials: Mutex<HashMap<String, Credentials>>,
}

/// Plain HTTP (and no verification) only for loopback registries and
/// those listed as insecure.
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let loopback = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback());
    name == "localhost" || loopback || insecure.iter().any(|h| h == host || h == name)
}

/// Docker's rule for insecure registries goes by address (its insecure
/// CIDRs, by default 127.0.0.0/8): a name that resolves into 127.0.0.0/8
/// is insecure as well, whatever the name.
async fn resolves_to_loopback(host: &str) -> bool {
    let with_port = match host.rsplit_once(':') {
        Some((_, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            host.to_string()
        }
        _ => format!("{host}:443"),
    };
    let lookup = tokio::net::lookup_host(with_port);
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(addresses)) => addresses
            .into_iter()
            .any(|a| matches!(a.ip(), std::net::IpAddr::V4(ip) if ip.is_loopback())),
        _ => false,
    }
}

/// Docker Hub's API answers at another name than its references use.
pub fn api_host(host: &str) -> &str {
    match host {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        h => h,
    }
}

impl Client {
    pub fn new(insecure: &[String], deadline: Duration) -> Client {
        Client {
            insecure: insecure.to_vec(),
            certs_d: PathBuf::from(CERTS_D),
            deadline,
            hosts: Mutex::default(),
            credentials: Mutex::default(),
        }
    }

    /// Credentials for `host`, read from the docker config once.
    pub fn credentials(&self, host: &str) -> Result<Credentials> {
        if let Some(c) = self.credentials.lock().unwrap().get(host) {
            return Ok(c.clone());
        }
        let c = Credentials::for_host(host)?;
        self.credentials
            .lock()
            .unwrap()
            .insert(host.to_string(), c.clone());
        Ok(c)
    }

    /// Uses these credentials for `host` instead of reading the config.
    pub fn set_credentials(&self, host: &str, credentials: Credentials) {
        self.credentials
            .lock()
            .unwrap()
            .insert(host.to_string(), credentials);
    }

    async fn host(&self, host: &str) -> std::result::Result<Arc<Host>, RegistryError> {
        let cell = self
            .hosts
            .lock()
            .unwrap()
            .entry(host.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.set_up(host)).await.cloned()
    }

    /// A host's clients: its trust (certs.d, or none for an insecure host)
    /// and timeouts.
    async fn set_up(&self, host: &str) -> std::result::Result<Arc<Host>, RegistryError> {
        let insecure = is_insecure(host, &self.insecure) || resolves_to_loopback(host).await;
        let fail = |message: String| RegistryError {
            host: host.to_string(),
            status: None,
            message,
            tls: false,
        };
        let (cas, identity) = certs_d(&self.certs_d.join(host)).map_err(|e| fail(e.to_string()))?;
        let trust = if insecure {
            Trust::Anything
        } else {
            Trust::SystemAnd(cas)
        };
        let client_cert = identity.is_some();
        let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        let config = tls::client_config(&trust, identity).map_err(|e| fail(e.to_string()))?;
        // A stalled request must leave time for another within the deadline.
        let patience = (self.deadline / 4).max(Duration::from_secs(1));
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(patience.min(Duration::from_secs(10)))
                .read_timeout(patience.min(Duration::from_secs(30)))
                .user_agent(concat!("tagsmith/", env!("CARGO_PKG_VERSION")))
        };
        let https = builder()
            .tls_backend_preconfigured(config)
            .build()
            .map_err(|e| fail(format!("HTTP client: {e}")))?;
        let http = if insecure {
            Some(
                builder()
                    .build()
                    .map_err(|e| fail(format!("HTTP client: {e}")))?,
            )
        } else {
            None
        };
        Ok(Arc::new(Host {
            name: host.to_string(),
            client_cert,
            https,
            http,
            scheme: Mutex::new(if insecure {
                Scheme::Unknown
            } else {
                Scheme::Https
            }),
            challenge: tokio::sync::OnceCell::new(),
            tokens: Mutex::default(),
            slots: tokio::sync::Semaphore::new(PER_HOST),
        }))
    }

    /// Sends `call`, authenticating and retrying as the module says. Any
    /// answer that is not retried is returned, whatever its status.
    pub async fn send(&self, call: &Call<'_>) -> std::result::Result<Answer, RegistryError> {
        let start = Instant::now();
        let host = self.host(call.host).await?;
        let _slot = host.slots.acquire().await.expect("never closed");
        let mut delay = Duration::from_millis(200);
        let mut attempts = 0;
        let mut refreshed = false;
        loop {
            attempts += 1;
            let outcome = self.attempt(&host, call).await;
            let wait = match &outcome {
                Ok(a)
                    if a.status == StatusCode::UNAUTHORIZED
                        && !refreshed
                        && self.drop_token(&host, &call.scope) =>
                {
                    // A cached token the registry no longer takes: once more with a new one.
                    refreshed = true;
                    continue;
                }
                Ok(a) if a.status == StatusCode::TOO_MANY_REQUESTS => {
                    retry_after(&a.headers).unwrap_or(delay)
                }
                Ok(a) if a.status.is_server_error() => delay,
                Err(Failure::Transient(_)) => delay,
                Ok(_) | Err(_) => return outcome.map_err(|f| self.give_up(call, Err(f), attempts)),
            };
            let wait = wait.min(Duration::from_secs(30));
            if start.elapsed() + wait > self.deadline {
                return Err(self.give_up(call, outcome, attempts));
            }
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    fn give_up(
        &self,
        call: &Call<'_>,
        outcome: std::result::Result<Answer, Failure>,
        attempts: u32,
    ) -> RegistryError {
        let tries = if attempts > 1 {
            format!(" after {attempts} attempts")
        } else {
            String::new()
        };
        let tls = matches!(outcome, Err(Failure::Tls(_)));
        let (status, cause) = match outcome {
            Ok(a) => (Some(a.status.as_u16()), describe(&a)),
            Err(Failure::Denied(status, c)) => (Some(status), c),
            Err(Failure::Transient(c) | Failure::Final(c) | Failure::Tls(c)) => (None, c),
        };
        RegistryError {
            host: call.host.to_string(),
            status,
            message: format!(
                "registry {}: {} failed{tries}: {cause}",
                call.host, call.what
            ),
            tls,
        }
    }

    fn drop_token(&self, host: &Host, scope: &str) -> bool {
        host.tokens.lock().unwrap().remove(scope).is_some()
    }

    /// One attempt: the right scheme, the right credentials.
    async fn attempt(&self, host: &Host, call: &Call<'_>) -> std::result::Result<Answer, Failure> {
        let challenge = host
            .challenge
            .get_or_try_init(|| self.learn_challenge(host, call.host))
            .await?
            .clone();
        let auth = match challenge {
            Challenge::None => None,
            Challenge::Basic => basic(
                &self
                    .credentials(call.host)
                    .map_err(|e| Failure::Final(e.to_string()))?,
            ),
            Challenge::Bearer { realm, service } => Some(format!(
                "Bearer {}",
                self.token(host, call, &realm, service.as_deref()).await?
            )),
        };
        let mut headers = header::HeaderMap::new();
        if let Some(a) = auth.and_then(|a| header::HeaderValue::from_str(&a).ok()) {
            headers.insert(header::AUTHORIZATION, a);
        }
        if let Some(accept) = call.accept {
            headers.insert(
                header::ACCEPT,
                header::HeaderValue::from_str(accept).expect("ASCII"),
            );
        }
        self.request(host, call.host, call.method.clone(), &call.path, headers)
            .await
    }

    /// `GET /v2/`: what the registry wants (nothing, Basic, or Bearer tokens).
    async fn learn_challenge(
        &self,
        host: &Host,
        name: &str,
    ) -> std::result::Result<Challenge, Failure> {
        let answer = self
            .request(host, name, Method::GET, "/v2/", header::HeaderMap::new())
            .await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            if answer.status.is_server_error() || answer.status == StatusCode::TOO_MANY_REQUESTS {
                return Err(Failure::Transient(describe(&answer)));
            }
            return Ok(Challenge::None);
        }
        let value = answer
            .headers
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(parse_challenge(value))
    }

    /// A Bearer token for the call's scope: cached, fetched once however many wait.
    async fn token(
        &self,
        host: &Host,
        call: &Call<'_>,
        realm: &str,
        service: Option<&str>,
    ) -> std::result::Result<String, Failure> {
        let cell = host
            .tokens
            .lock()
            .unwrap()
            .entry(call.scope.clone())
            .or_default()
            .clone();
        let mut slot = cell.lock().await;
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let creds = self
            .credentials(call.host)
            .map_err(|e| Failure::Final(e.to_string()))?;
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| Failure::Final(format!("token realm \"{realm}\": {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", &call.scope);
        }
        // The HTTPS client speaks plain HTTP to an http:// realm as well.
        let client = &host.https;
        let request = match &creds {
            // An identity token is an OAuth2 refresh token: exchanged, not sent.
            Credentials::IdentityToken(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("scope", call.scope.as_str()),
                    ("client_id", "tagsmith"),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                client.post(realm).form(&form)
            }
            other => {
                let r = client.get(url);
                match basic(other) {
                    Some(b) => r.header(header::AUTHORIZATION, b),
                    None => r,
                }
            }
        };
        let response = request.send().await.map_err(|e| host.failure(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| host.failure(e))?;
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Transient(format!(
                "the token service answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(Failure::Denied(
                status.as_u16(),
                format!("the token service answered {status}"),
            ));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| Failure::Transient(format!("the token service sent no token: {e}")))?;
        let token = answer
            .token
            .or(answer.access_token)
            .ok_or_else(|| Failure::Final("the token service sent no token".into()))?;
        *slot = Some(token.clone());
        Ok(token)
    }

    /// One HTTP exchange: HTTPS, or for an insecure host whose HTTPS
    /// cannot be reached, plain HTTP (Docker's fallback), decided once.
    async fn request(
        &self,
        host: &Host,
        name: &str,
        method: Method,
        path: &str,
        headers: header::HeaderMap,
    ) -> std::result::Result<Answer, Failure> {
        let authority = api_host(name);
        let scheme = *host.scheme.lock().unwrap();
        if let (Scheme::Http, Some(http)) = (scheme, &host.http) {
            let response = http
                .request(method, format!("http://{authority}{path}"))
                .headers(headers)
                .send()
                .await
                .map_err(|e| host.failure(e))?;
            return read(host, response).await;
        }
        let sent = host
            .https
            .request(method.clone(), format!("https://{authority}{path}"))
            .headers(headers.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                host.decide(Scheme::Https);
                read(host, response).await
            }
            // No TLS connection (refused, or not a TLS server): an insecure
            // host may speak plain HTTP.
            Err(e) if scheme == Scheme::Unknown && e.is_connect() => {
                let http = host.http.as_ref().expect("insecure hosts have one");
                let response = http
                    .request(method, format!("http://{authority}{path}"))
                    .headers(headers)
                    .send()
                    .await
                    .map_err(|e| host.failure(e))?;
                let answer = read(host, response).await?;
                if speaks_only_https(&answer) {
                    // An HTTPS server whose connection failed this time:
                    // that failure is the one to report (and retry).
                    host.decide(Scheme::Https);
                    return Err(host.failure(e));
                }
                host.decide(Scheme::Http);
                Ok(answer)
            }
            Err(e) => {
                if !e.is_connect() {
                    // The TLS connection was made: the host speaks HTTPS.
                    host.decide(Scheme::Https);
                }
                Err(host.failure(e))
            }
        }
    }
}

/// Reads a whole answer; one shorter than its Content-Length was cut short.
async fn read(host: &Host, response: reqwest::Response) -> std::result::Result<Answer, Failure> {
    let status = response.status();
    let headers = response.headers().clone();
    let expected = response.content_length();
    let body = response.bytes().await.map_err(|e| host.failure(e))?;
    if expected.is_some_and(|n| n != body.len() as u64) {
        return Err(Failure::Transient("the answer was cut short".into()));
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The answer of an HTTPS server to plain HTTP: Go's (the registry's) "Client
/// sent an HTTP request to an HTTPS server", nginx's "The plain HTTP request
/// was sent to HTTPS port".
fn speaks_only_https(a: &Answer) -> bool {
    a.status == StatusCode::BAD_REQUEST
        && String::from_utf8_lossy(&a.body)
            .to_ascii_lowercase()
            .contains("https")
}

enum Failure {
    /// Worth another attempt: the network, a timeout, a reset.
    Transient(String),
    Final(String),
    /// A TLS trust problem (the registry's certificate, or ours): every
    /// call to the host fails alike; the text says what to do.
    Tls(String),
    /// The token service refused the credentials (its HTTP status).
    Denied(u16, String),
}

impl Host {
    /// Settles the scheme of a host not reached yet.
    fn decide(&self, scheme: Scheme) {
        let mut s = self.scheme.lock().unwrap();
        if *s == Scheme::Unknown {
            *s = scheme;
        }
    }

    /// A transport error, judged: a TLS trust problem does not go away by
    /// trying again, and says where certs.d wants the files.
    fn failure(&self, e: reqwest::Error) -> Failure {
        let text = super::redact(&e);
        if e.is_builder() {
            return Failure::Final(text);
        }
        match tls_problem(&text, &self.name, self.client_cert) {
            Some(problem) => Failure::Tls(problem),
            None => Failure::Transient(text),
        }
    }
}

/// What a TLS failure means for `host`, if `text` is one.
fn tls_problem(text: &str, host: &str, client_cert: bool) -> Option<String> {
    let dir = format!("{CERTS_D}/{host}");
    let after = |marker: &str| {
        text.split_once(marker).map(|(_, rest)| {
            rest.split([' ', ',', ')', '{'])
                .next()
                .unwrap_or_default()
                .to_string()
        })
    };
    if let Some(reason) = after("invalid peer certificate: ") {
        return Some(match reason.as_str() {
            "UnknownIssuer" => format!(
                "the registry's TLS certificate is not signed by a CA this machine trusts ({reason}): put the CA's certificate in {dir}/ca.crt, where the Docker engine reads it too"
            ),
            r if r.starts_with("NotValidForName") => {
                format!("the registry's TLS certificate is not valid for {host} ({reason})")
            }
            _ => format!("the registry's TLS certificate is not valid ({reason})"),
        });
    }
    if let Some(alert) = after("received fatal alert: ") {
        // What servers answer a missing or unacceptable client certificate.
        let about_ours = [
            "BadCertificate",
            "CertificateRequired",
            "HandshakeFailure",
            "UnknownCA",
            "CertificateUnknown",
            "AccessDenied",
        ]
        .contains(&alert.as_str());
        return Some(match (about_ours, client_cert) {
            (true, true) => format!(
                "the registry refused the TLS connection ({alert}): it does not accept the client certificate in {dir}/"
            ),
            (true, false) => format!(
                "the registry refused the TLS connection ({alert}): it wants a client certificate: put client.cert and client.key in {dir}/, where the Docker engine reads them too"
            ),
            (false, _) => format!("the registry refused the TLS connection ({alert})"),
        });
    }
    text.contains("certificate").then(|| text.to_string())
}

/// A failed answer in a line: its status and the registry's error codes.
fn describe(a: &Answer) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    let detail = serde_json::from_slice::<Envelope>(&a.body)
        .ok()
        .map(|e| {
            e.errors
                .iter()
                .map(|i| {
                    format!(
                        "{} {}",
                        i.code.as_deref().unwrap_or(""),
                        i.message.as_deref().unwrap_or("")
                    )
                    .trim()
                    .to_string()
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|d| !d.is_empty());
    match detail {
        Some(d) => format!("{} ({d})", a.status),
        None => a.status.to_string(),
    }
}

fn basic(c: &Credentials) -> Option<String> {
    match c {
        Credentials::Basic { username, password } => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        )),
        _ => None,
    }
}

/// `Retry-After` in seconds (an HTTP date counts as unknown).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
fn parse_challenge(value: &str) -> Challenge {
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::None;
    }
    let mut realm = None;
    let mut service = None;
    let mut rest = params;
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim();
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => match q.split_once('"') {
                Some((v, n)) => (v, n),
                None => (q, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        match key {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            _ => {}
        }
        rest = next;
    }
    match realm {
        Some(realm) => Challenge::Bearer { realm, service },
        None => Challenge::Basic,
    }
}

/// A client certificate and its key.
type Identity = (PathBuf, PathBuf);

/// `*.crt` files (extra CAs) and one `*.cert`/`*.key` pair in a certs.d
/// directory, as the Docker engine reads them.
fn certs_d(dir: &Path) -> Result<(Vec<PathBuf>, Option<Identity>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok((Vec::new(), None));
    };
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let cas = names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "crt"))
        .cloned()
        .collect();
    let mut identity = None;
    for cert in names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cert"))
    {
        let key = cert.with_extension("key");
        if !key.exists() {
            return Err(crate::error::Error::file(
                cert,
                format!(
                    "no key {} beside this client certificate (CA certificates end in .crt)",
                    key.display()
                ),
            ));
        }
        identity = Some((cert.clone(), key));
    }
    Ok((cas, identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        match parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        ) {
            Challenge::Bearer { realm, service } => {
                assert_eq!(realm, "https://auth.example/token");
                assert_eq!(service.as_deref(), Some("registry.example"));
            }
            _ => panic!("not bearer"),
        }
        assert!(matches!(
            parse_challenge(r#"Basic realm="x""#),
            Challenge::Basic
        ));
        assert!(matches!(parse_challenge(""), Challenge::None));
    }

    #[test]
    fn insecure_means_loopback_or_listed() {
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("127.1.2.3", &[]));
        assert!(is_insecure("localhost:5000", &[]));
        assert!(is_insecure("[::1]:5000", &[]));
        assert!(!is_insecure("registry.example.com", &[]));
        assert!(!is_insecure("127.0.0.1.nip.io:5000", &[]));
        assert!(is_insecure(
            "reg.internal:5000",
            &["reg.internal:5000".into()]
        ));
        assert!(is_insecure("reg.internal:5000", &["reg.internal".into()]));
    }

    #[test]
    fn tls_problems_say_where_certs_d_wants_the_files() {
        let text = "error sending request for url (https://r.test:5000/v2/): client error (Connect): invalid peer certificate: UnknownIssuer";
        let p = tls_problem(text, "r.test:5000", false).unwrap();
        assert!(
            p.contains("(UnknownIssuer)") && p.contains("/etc/docker/certs.d/r.test:5000/ca.crt"),
            "{p}"
        );
        let text =
            "client error (Canceled): connection error: received fatal alert: CertificateRequired";
        let p = tls_problem(text, "r.test:5000", false).unwrap();
        assert!(
            p.contains("(CertificateRequired)")
                && p.contains("client.cert and client.key in /etc/docker/certs.d/r.test:5000/"),
            "{p}"
        );
        let p = tls_problem(text, "r.test:5000", true).unwrap();
        assert!(p.contains("does not accept the client certificate"), "{p}");
        assert_eq!(
            tls_problem("Connection reset by peer", "r.test", false),
            None
        );
        let p = tls_problem("invalid peer certificate: Expired", "r.test", false).unwrap();
        assert_eq!(p, "the registry's TLS certificate is not valid (Expired)");
        let p = tls_problem("received fatal alert: ProtocolVersion", "r.test", false).unwrap();
        assert_eq!(
            p,
            "the registry refused the TLS connection (ProtocolVersion)"
        );
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = header::HeaderMap::new();
        h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }
}
