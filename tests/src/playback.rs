//! The playback function on the local AWS, next to an encrypt-recording
//! [`Stack`]: the real handler over the real SDK adapters, configured through
//! `Config::from_lookup` as the Lambda reads its environment, and requests
//! built from `events/playback-get.json` the way a Function URL delivers them.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use vault::config::FromSettings;

use http_body::Body as _;
use lambda_http::http::HeaderMap;
use playback::auth::issuer::TestIssuer;
use playback::auth::oidc::Oidc;
use playback::auth::signin::Auth;
use playback::{AuditLog, AuditRecord, Config, Handler, PlaybackBody};
use serde_json::Value;
use vault::aws::AwsKms;
use vault::aws::DynamoCatalog as Catalog;
use vault::aws::S3Objects;
use vault::playback::RecordingPlayer;

use crate::ingest::Stack;
use crate::{root, REGION};

/// The issuer the stacks' playback trusts (template parameter OidcIssuer).
pub const ISSUER: &str = "https://login.example.com/callvault-tests";
/// The player's client id (OidcClientId).
pub const CLIENT_ID: &str = "player";
/// The group every test stack lets play every type.
pub const SUPERVISORS: &str = "supervisors";

/// The in-memory identity provider (one per test binary: an RSA key takes
/// a moment): tokens for the in-process handler.
pub static IDP: LazyLock<Arc<TestIssuer>> = LazyLock::new(|| TestIssuer::new(ISSUER, CLIENT_ID));

/// PlaybackAccess of a test stack: supervisors play every type.
pub fn access_for(types: &[&str]) -> String {
    serde_json::json!({ SUPERVISORS: types }).to_string()
}

/// `Authorization` of a supervisor (jane.doe, every type).
pub fn supervisor() -> String {
    format!("Bearer {}", IDP.token(&IDP.claims("jane.doe", &[SUPERVISORS])))
}

/// The audit records a handler wrote, for tests to read: the end records,
/// and the start records of streams.
#[derive(Default)]
pub struct Audits(Mutex<Vec<AuditRecord>>, Mutex<Vec<AuditRecord>>);

impl AuditLog for Audits {
    fn record(&self, record: &AuditRecord) {
        self.0.lock().expect("audits").push(record.clone());
    }

    fn start(&self, record: &AuditRecord) {
        self.1.lock().expect("audits").push(record.clone());
    }
}

impl Audits {
    /// The start records so far.
    pub fn starts(&self) -> Vec<AuditRecord> {
        self.1.lock().expect("audits").clone()
    }

    /// Every record so far.
    pub fn all(&self) -> Vec<AuditRecord> {
        self.0.lock().expect("audits").clone()
    }

    /// The last record.
    pub fn last(&self) -> AuditRecord {
        self.all().pop().expect("an audit record")
    }
}

/// What a client received.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The bytes received before the body ended.
    pub body: Vec<u8>,
    /// Why the body ended early, if it did.
    pub aborted: Option<String>,
}

impl Reply {
    /// A header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A playback function deployed next to `stack`.
pub struct Playback {
    pub handler: Handler<AwsKms, S3Objects, Catalog, Arc<TestIssuer>>,
    pub audits: Arc<Audits>,
}

/// The playback function's environment, as template.yaml sets it.
pub fn env(stack: &Stack<'_>) -> Vec<(&'static str, String)> {
    stack.function_env("playback")
}

impl Playback {
    /// A fresh container (empty cache) with `overrides` on top of [`env`].
    pub async fn new(stack: &Stack<'_>, overrides: &[(&'static str, &str)]) -> Playback {
        let mut env: HashMap<&str, String> = env(stack).into_iter().collect();
        env.extend(overrides.iter().map(|(k, v)| (*k, v.to_string())));
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("playback config");
        let sdk = stack.aws.config(REGION).await;
        let player = RecordingPlayer::new(
            AwsKms::new(&sdk),
            S3Objects::from_config(&sdk),
            Catalog::from_config(&sdk, &config.catalog_table),
            config.settings,
        );
        let audits = Arc::new(Audits::default());
        let auth =
            Auth { oidc: Oidc::new(IDP.clone(), config.oidc.clone()), access: config.access.clone(), sign_in: None };
        Playback { handler: Handler::new(player, config.max_response_bytes, audits.clone(), auth), audits }
    }

    /// Sends `method raw_path` with `headers` (and a supervisor's bearer
    /// token, unless they carry an Authorization) and reads the whole reply.
    pub async fn send(&self, method: &str, raw_path: &str, headers: &[(&str, &str)]) -> Reply {
        let token = supervisor();
        let mut headers = headers.to_vec();
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
            headers.push(("authorization", &token));
        }
        let response = self.handler.handle(request(method, raw_path, &headers)).await;
        let (parts, mut body) = response.into_parts();
        let (bytes, aborted) = collect(&mut body).await;
        // The audit line of a streamed reply is written just before its body ends.
        Reply { status: parts.status.as_u16(), headers: parts.headers, body: bytes, aborted }
    }

    /// GET with an optional Range header.
    pub async fn get(&self, raw_path: &str, range: Option<&str>) -> Reply {
        match range {
            Some(r) => self.send("GET", raw_path, &[("range", r)]).await,
            None => self.send("GET", raw_path, &[]).await,
        }
    }
}

/// Reads a body to its end, or to its error.
pub async fn collect(body: &mut PlaybackBody) -> (Vec<u8>, Option<String>) {
    let mut bytes = Vec::new();
    loop {
        match std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
            None => return (bytes, None),
            Some(Ok(frame)) => bytes.extend_from_slice(&frame.into_data().unwrap_or_default()),
            Some(Err(e)) => return (bytes, Some(e.to_string())),
        }
    }
}

/// The Function URL event of `events/playback-get.json` for `method
/// raw_path` with `headers` added, as lambda_http turns it into a request.
pub fn request(method: &str, raw_path: &str, headers: &[(&str, &str)]) -> lambda_http::Request {
    let mut event = sample_event("playback-get.json");
    event["rawPath"] = raw_path.into();
    event["requestContext"]["http"]["path"] = raw_path.into();
    event["requestContext"]["http"]["method"] = method.into();
    for (k, v) in headers {
        event["headers"][k.to_ascii_lowercase()] = (*v).into();
    }
    lambda_http::request::from_str(&event.to_string()).expect("a Function URL event")
}

/// A sample event from `events/`.
pub fn sample_event(name: &str) -> Value {
    let path = root().join("events").join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("sample event")).expect("sample event JSON")
}

/// The path of a recording, each id segment percent-encoded.
pub fn recording_path(recording_type: &str, recording_id: &str) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let id: Vec<String> = recording_id.split('/').map(encode).collect();
    format!("/recordings/{}/{}", encode(recording_type), id.join("/"))
}

/// The player's front on the local AWS (`infra/local/player_front.py`): the
/// player at the root of `http://localhost:PORT`, a secure context, as
/// CloudFront serves it at the distribution's root over https; it forwards
/// to the function's local URL and adds `CloudFront-Viewer-Address`.
pub struct Front {
    /// `http://localhost:PORT`, the player's URL.
    pub url: String,
    child: std::process::Child,
}

impl Front {
    /// Starts the front before `origin` (the function's URL), sending
    /// `secret` (the player-front secret's value) as the distribution does;
    /// fails loudly when it cannot.
    pub fn start(origin: &str, secret: Option<&str>) -> Front {
        let port = crate::lambda::free_port();
        // The local AWS's Python: the front reads template.yaml's origin
        // request policy with PyYAML, and forwards only what it lists.
        let python = crate::root().join("infra/local/.venv/moto/bin/python");
        assert!(python.exists(), "the local AWS is not set up: run infra/local/setup.sh");
        let template = crate::root().join("template.yaml");
        let mut cmd = std::process::Command::new(python);
        cmd.arg(crate::root().join("infra/local/player_front.py"))
            .args(["--port", &port.to_string(), "--origin", origin])
            .arg("--template")
            .arg(template)
            .env("CALLVAULT_FRONT_SECRET", secret.unwrap_or_default())
            .stderr(std::process::Stdio::null());
        let child =
            crate::spawn_announced(&mut cmd, "player front: ", "the player's front (infra/local/player_front.py)");
        Front { url: format!("http://localhost:{port}"), child }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
