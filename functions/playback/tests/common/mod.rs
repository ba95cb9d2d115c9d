//! The playback handler over the in-memory twins and an in-memory identity
//! provider: recordings encrypted by the real ingest code, requests shaped
//! as a Function URL delivers them, tokens signed by the test issuer.

#![allow(dead_code)]

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use http_body::Body;
use playback::auth::access::AccessPolicy;
use playback::auth::issuer::TestIssuer;
use playback::auth::oidc::{Oidc, OidcSettings};
use playback::auth::signin::{Auth, SignIn};
use playback::{Handler, PlaybackBody, StdoutAudit};
use vault::ingest::{Announced, IngestSettings, RecordingEncryptor};
use vault::memory::{MemoryCatalog, MemoryKms, MemoryObjects};
use vault::playback::{PlaybackSettings, RecordingPlayer, DEFAULT_BATCH_BYTES};
use vault::ports::objects::{S3Location, WriteOptions};
use vault::recording::RecordingKeys;

pub const ISSUER: &str = "https://login.example.com/acme";
pub const CLIENT_ID: &str = "player";
pub const PLAYER_URL: &str = "https://player.example.com";
/// Who plays what in these tests.
pub const ACCESS: &str = r#"{"supervisors": ["calls", "screens"], "qa": ["calls"], "emea-qa": ["calls/emea/"]}"#;

/// One issuer for every test of a binary (an RSA key takes a moment to make).
pub static IDP: LazyLock<Arc<TestIssuer>> = LazyLock::new(|| TestIssuer::new(ISSUER, CLIENT_ID));

/// A token of a supervisor (every type).
pub fn supervisor_token() -> String {
    IDP.token(&IDP.claims("sam.supervisor", &["supervisors", "staff"]))
}

pub type TestHandler = Handler<Arc<MemoryKms>, MemoryObjects, MemoryCatalog, Arc<TestIssuer>>;

pub struct Rig {
    pub kms: Arc<MemoryKms>,
    pub objects: MemoryObjects,
    pub catalog: MemoryCatalog,
    pub keys: RecordingKeys,
    pub key: String,
}

impl Rig {
    pub fn new() -> Self {
        let kms = Arc::new(MemoryKms::new());
        let key = kms.create_symmetric("us-east-1");
        let objects = MemoryObjects::new();
        objects.create_bucket("ingest", true);
        objects.create_bucket("vault", true);
        let keys = RecordingKeys::parse(&format!(r#"{{"calls,screens": ["{key}"]}}"#), "us-east-1").unwrap();
        Self { kms, objects, catalog: MemoryCatalog::new(), keys, key }
    }

    pub async fn record(&self, key: &str, body: &[u8], content_type: &str) {
        let loc = S3Location { bucket: "ingest".into(), key: key.into() };
        let (etag, version) = self.objects.put(&loc, body, Some(content_type));
        let settings = IngestSettings {
            org: "acme".into(),
            ingest_bucket: "ingest".into(),
            vault_bucket: "vault".into(),
            keys: self.keys.clone(),
            frame_length: 4096,
            region: "us-east-1".into(),
            write: WriteOptions::default(),
            retention: Default::default(),
            vault_lock: None,
        };
        let encryptor = RecordingEncryptor::new(self.kms.clone(), self.objects.clone(), self.catalog.clone(), settings);
        let obj = Announced { bucket: "ingest".into(), key: key.into(), etag, version };
        encryptor.encrypt(&obj, vault::time::unix_now() + 900, "req").await.expect("encrypted");
    }

    pub fn handler(&self) -> TestHandler {
        self.handler_with(Arc::new(StdoutAudit))
    }

    pub fn handler_with(&self, audit: Arc<dyn playback::AuditLog>) -> TestHandler {
        self.handler_of(audit, auth())
    }

    /// A handler trusting `auth` (a test's own issuer).
    pub fn handler_of(&self, audit: Arc<dyn playback::AuditLog>, auth: Auth<Arc<TestIssuer>>) -> TestHandler {
        let settings = PlaybackSettings {
            org: "acme".into(),
            vault_bucket: "vault".into(),
            region: "us-east-1".into(),
            cache_ttl: Duration::from_secs(60),
            cache_entries: 8,
            batch_bytes: DEFAULT_BATCH_BYTES,
        };
        let player = RecordingPlayer::new(self.kms.clone(), self.objects.clone(), self.catalog.clone(), settings);
        Handler::new(player, 4 * 1024 * 1024, audit, auth)
    }

    /// KMS Decrypt calls so far.
    pub fn decrypts(&self) -> u64 {
        self.kms.calls.get("Decrypt") as u64
    }
}

/// The player's session-key secret (what the template generates).
pub const SESSION_KEYS: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZab";
/// How long a session lasts (SESSION_SECONDS).
pub const SESSION_SECONDS: u64 = 3600;

/// The handler's authentication: the test issuer, the access policy, and
/// browser sign-in at [`PLAYER_URL`].
pub fn auth() -> Auth<Arc<TestIssuer>> {
    auth_of(IDP.clone())
}

/// [`auth`] trusting `idp` (one whose counters no other test touches).
pub fn auth_of(idp: Arc<TestIssuer>) -> Auth<Arc<TestIssuer>> {
    let settings = OidcSettings {
        issuer: ISSUER.into(),
        client_id: CLIENT_ID.into(),
        audiences: vec![CLIENT_ID.into(), "tools".into()],
        groups_claims: vec!["groups".into()],
        leeway: Duration::from_secs(60),
    };
    let sign_in = SignIn::new(
        PLAYER_URL.into(),
        zeroize::Zeroizing::new(idp.client_secret.clone()),
        vec![zeroize::Zeroizing::new(SESSION_KEYS.to_string())],
        Duration::from_secs(SESSION_SECONDS),
        "openid email profile".into(),
    );
    Auth {
        oidc: Oidc::new(idp, settings),
        access: AccessPolicy::parse("PLAYBACK_ACCESS", ACCESS).unwrap(),
        sign_in: Some(sign_in),
    }
}

/// The sample Function URL event for `method path` with `headers`, and no
/// credential of the person.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> lambda_http::Request {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/playback-get.json");
    let mut event: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    event["rawPath"] = path.into();
    event["rawQueryString"] = query.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    for (k, v) in headers {
        event["headers"][k.to_ascii_lowercase()] = (*v).into();
    }
    lambda_http::request::from_str(&event.to_string()).expect("a Function URL event")
}

/// GET `path` as a supervisor (a bearer token of every type).
pub fn get(path: &str) -> lambda_http::Request {
    let auth = format!("Bearer {}", supervisor_token());
    request("GET", path, &[("authorization", &auth)])
}

pub async fn body(mut body: PlaybackBody) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        out.extend_from_slice(&frame.expect("no stream error").into_data().unwrap_or_default());
    }
    out
}

/// Keeps the records, start and end apart.
#[derive(Default)]
pub struct Kept(pub std::sync::Mutex<(Vec<playback::AuditRecord>, Vec<playback::AuditRecord>)>);

impl playback::AuditLog for Kept {
    fn record(&self, record: &playback::AuditRecord) {
        self.0.lock().unwrap().1.push(record.clone());
    }
    fn start(&self, record: &playback::AuditRecord) {
        self.0.lock().unwrap().0.push(record.clone());
    }
}

pub async fn answer(h: &TestHandler, req: lambda_http::Request) -> (u16, lambda_http::http::HeaderMap, Vec<u8>) {
    let (parts, b) = h.handle(req).await.into_parts();
    (parts.status.as_u16(), parts.headers, body(b).await)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The catalog refuses the next read: a request that reads it fails with
/// 500, so one that answers otherwise did not read it.
pub fn trap_catalog(rig: &Rig) {
    rig.catalog.faults.fail_next(
        "recording",
        vault::ports::catalog::CatalogError::Unavailable { detail: "trap: the catalog was read".into() },
    );
}

/// Whether the catalog trap is still set (consumes it).
pub async fn rig_catalog_trap_sprung(rig: &Rig) -> bool {
    use vault::ports::catalog::RecordingCatalog;
    let id = vault::recording::RecordingId { recording_type: "calls".into(), recording_id: "a.wav".into() };
    rig.catalog.recording(&id).await.is_err()
}
