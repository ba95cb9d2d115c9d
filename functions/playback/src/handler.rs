//! HTTP in, recording out: who is asking (a verified token or the session
//! it started) and whether they may, then routes, ranges, headers, error
//! bodies, and the audit line of every request. The work itself is
//! [`vault::playback`].

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use lambda_http::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt, Response};
use tokio::sync::mpsc;
use vault::errors::{ErrorKind, OperationError};
use vault::playback::{FrameStream, OpenRecording, OpenStats, PlaybackError, RecordingPlayer};
use vault::ports::catalog::{BrowseQuery, RecordingBrowser, RecordingCatalog};
use vault::ports::keys::KeyManagement;
use vault::ports::objects::ObjectStore;

use crate::audit::{AuditLog, AuditRecord};
use crate::auth::access::Access;
use crate::auth::provider::IdentityProvider;
use crate::auth::{AuthError, Identity};
use crate::body::{PlaybackBody, StreamAborted};
use crate::range::{ByteRange, RangeError};
use crate::route::{PathError, Route, ASSETS};
use crate::web::{parse_query, query_string, static_response, Auth, PAGE};

/// Batches of audio waiting to be sent: bounds the memory of a stream.
const STREAM_DEPTH: usize = 2;

/// The playback handler: one per container, shared by every request.
pub struct Handler<K, O, C, P> {
    player: Arc<RecordingPlayer<K, O, C>>,
    max_response_bytes: u64,
    audit: Arc<dyn AuditLog>,
    auth: Auth<P>,
    cursors: crate::auth::session::CursorKey,
}

/// Most rows of one page of the list.
pub const MAX_LIST_LIMIT: usize = 100;
const DEFAULT_LIST_LIMIT: usize = 25;

/// An error answered as `{ "error": code, "message": ... }`.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    key: Option<String>,
    headers: Vec<(header::HeaderName, String)>,
    /// What is logged beside the message, when it says more.
    detail: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), key: None, headers: Vec::new(), detail: None }
    }

    fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn path(e: PathError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_path", e.to_string())
    }

    fn range(e: RangeError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_range", e.to_string())
    }

    fn auth(e: AuthError) -> Self {
        let status = match e {
            AuthError::NotSignedIn | AuthError::TokenRefused(_) | AuthError::SessionRefused(_) => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::ProviderUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::SignIn(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::NOT_IMPLEMENTED,
        };
        let mut refusal = Self::new(status, e.code(), e.message());
        refusal.detail = Some(e.to_string());
        match e {
            AuthError::TokenRefused(_) => {
                refusal.with_header(header::WWW_AUTHENTICATE, r#"Bearer realm="callvault", error="invalid_token""#)
            }
            AuthError::NotSignedIn | AuthError::SessionRefused(_) => {
                refusal.with_header(header::WWW_AUTHENTICATE, r#"Bearer realm="callvault""#)
            }
            AuthError::ProviderUnavailable(_) => refusal.with_header(header::RETRY_AFTER, "5"),
            _ => refusal,
        }
    }

    fn not_permitted(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            format!("You are not permitted to play {what}: ask the administrator of the player for access."),
        )
    }

    fn playback(e: &PlaybackError) -> Self {
        let code = e.code();
        let status = match e.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            // Gone from here for good; the body says where it went.
            ErrorKind::Moved => StatusCode::GONE,
            ErrorKind::KeyRefused => StatusCode::FORBIDDEN,
            ErrorKind::Transient => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Fixed texts: the detail (an AWS message, a bucket, a table, another
        // recording) goes to the log with the request id, never to the client.
        let mut refusal = match (e.kind(), e.key_arn()) {
            (ErrorKind::KeyRefused, Some(key)) => {
                let mut r = Self::new(
                    status,
                    code,
                    format!(
                        "This recording cannot be played: its KMS key refuses ({code}). Contact the administrator of KMS key {key}."
                    ),
                );
                r.key = Some(key.to_string());
                r
            }
            (ErrorKind::NotFound, _) => Self::new(status, code, e.to_string()),
            // Where it went (the region), not how it is stored there.
            (ErrorKind::Moved, _) => match e {
                PlaybackError::Moved { id, region, moved_at, .. } => Self::new(
                    status,
                    code,
                    format!("recording {id} moved to {region} on {moved_at}: play it from the {region} deployment"),
                ),
                _ => Self::new(status, code, "this recording moved to another deployment"),
            },
            (ErrorKind::Integrity, _) => Self::new(
                status,
                code,
                "this recording failed its integrity check and nothing of it was released: report it to the security team with this request's id",
            ),
            (ErrorKind::Transient, _) => {
                Self::new(status, code, "the recording cannot be read right now; retry in a moment")
            }
            _ => Self::new(
                status,
                code,
                "playback is not set up correctly: give the operator this request's id (the log has the detail)",
            ),
        };
        refusal.detail = Some(e.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refusal = refusal.with_header(header::RETRY_AFTER, "1");
        }
        refusal
    }

    fn into_response(self, head_only: bool) -> Response<PlaybackBody> {
        let mut body = serde_json::json!({ "error": self.code, "message": self.message });
        if let Some(key) = &self.key {
            body["key_arn"] = serde_json::Value::from(key.as_str());
        }
        let body = body.to_string();
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .header(header::CACHE_CONTROL, "no-store")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let body = if head_only { PlaybackBody::empty() } else { PlaybackBody::full(body) };
        builder.body(body).unwrap_or_else(|_| internal())
    }
}

const OCTET_STREAM: &str = "application/octet-stream";

/// The type a recording is served as: its (uploader-given) content type
/// when that is audio or video, reduced to its essence (`audio/wav`), else
/// `None` (served as an attachment of type application/octet-stream).
fn served_content_type(declared: &str) -> Option<String> {
    let essence = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    (matches!(kind, "audio" | "video") && token(subtype)).then_some(essence)
}

pub(crate) fn internal() -> Response<PlaybackBody> {
    let mut r =
        Response::new(PlaybackBody::full(r#"{"error":"internal","message":"the response could not be built"}"#));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

/// A response and, for audio, the rest of the stream still to send.
struct Answer {
    response: Response<PlaybackBody>,
    rest: Option<(FrameStream, mpsc::Sender<Result<Bytes, StreamAborted>>)>,
}

impl From<Response<PlaybackBody>> for Answer {
    fn from(response: Response<PlaybackBody>) -> Self {
        Self { response, rest: None }
    }
}

impl<K, O, C, P> Handler<K, O, C, P>
where
    K: KeyManagement + 'static,
    O: ObjectStore + 'static,
    C: RecordingCatalog + RecordingBrowser + 'static,
    P: IdentityProvider,
{
    /// A handler over `player`, letting in whom `auth` verifies; ranged
    /// responses carry at most `max_response_bytes` of audio.
    pub fn new(
        player: RecordingPlayer<K, O, C>,
        max_response_bytes: u64,
        audit: Arc<dyn AuditLog>,
        auth: Auth<P>,
    ) -> Self {
        let cursors = auth.sign_in.as_ref().map_or_else(crate::auth::session::CursorKey::random, |s| s.cursor_key());
        Self { player: Arc::new(player), max_response_bytes, audit, auth, cursors }
    }

    /// The player, for its cache.
    pub fn player(&self) -> &RecordingPlayer<K, O, C> {
        &self.player
    }

    /// Answers one request. Never fails: every error is a response.
    pub async fn handle(&self, req: Request) -> Response<PlaybackBody> {
        let started = Instant::now();
        let mut audit = audit_record(&req);
        let answer = match self.answer(&req, &mut audit).await {
            Ok(answer) => answer,
            Err(refusal) => {
                audit.outcome = "error";
                audit.code = Some(refusal.code);
                let detail = refusal.detail.as_deref().unwrap_or(&refusal.message);
                if refusal.status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(code = refusal.code, recording = ?audit.recording, request_id = %audit.request_id, "{detail}");
                } else if refusal.detail.is_some() {
                    tracing::warn!(code = refusal.code, recording = ?audit.recording, request_id = %audit.request_id, "{detail}");
                }
                refusal.into_response(req.method() == Method::HEAD).into()
            }
        };
        audit.status = answer.response.status().as_u16();
        audit.time_to_first_byte_ms = millis(started);
        match answer.rest {
            None => {
                audit.duration_ms = millis(started);
                self.audit.record(&audit);
            }
            Some((frames, tx)) => {
                // On record before the first byte leaves: a transfer cut by a
                // timeout or a crash is still known (who, what, which bytes).
                let start = AuditRecord { phase: "start", outcome: "started", ..audit.clone() };
                self.audit.start(&start);
                tokio::spawn(stream_rest(frames, tx, audit, started, self.audit.clone()));
            }
        }
        answer.response
    }

    async fn answer(&self, req: &Request, audit: &mut AuditRecord) -> Result<Answer, Refusal> {
        let head_only = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                return Err(Refusal::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{} is not served: use GET or HEAD", req.method()),
                )
                .with_header(header::ALLOW, "GET, HEAD"))
            }
        };
        let raw_path = req.raw_http_path();
        let raw_path = if raw_path.is_empty() { req.uri().path() } else { raw_path };
        let route = Route::parse(raw_path).map_err(Refusal::path)?;
        // What needs no identity: the page, its files, the sign-in.
        match &route {
            Route::Page => {
                audit.route = "page";
                return Ok(static_response("text/html; charset=utf-8", PAGE, head_only).into());
            }
            Route::Asset(name) => {
                audit.route = "page";
                let (_, content_type, body) = ASSETS.iter().find(|(n, _, _)| n == name).copied().unwrap_or_default();
                return Ok(static_response(content_type, body, head_only).into());
            }
            Route::Login => {
                audit.route = "login";
                return Ok(self.auth.login().await.map_err(Refusal::auth)?.into());
            }
            Route::Callback => {
                audit.route = "callback";
                let query = parse_query(query_string(req.uri()));
                let (response, identity) = self.auth.callback(&query, req.headers()).await.map_err(Refusal::auth)?;
                audit.identify(&identity, identity.groups.clone());
                return Ok(response.into());
            }
            Route::Logout => {
                audit.route = "logout";
                return Ok(self.auth.logout().map_err(Refusal::auth)?.into());
            }
            _ => {}
        }
        // Everything else: a verified identity first, before any read of
        // the catalog, the vault or KMS.
        let identity = self.auth.authenticate(req.headers()).await.map_err(Refusal::auth)?;
        audit.identify(&identity, Vec::new());
        let access = self.auth.access.access(&identity.groups);
        let id = match &route {
            Route::Audio(id) | Route::Info(id) => id,
            Route::Me => {
                audit.route = "me";
                audit.groups = identity.granting_groups(&self.auth.access);
                return Ok(me_response(&identity, &access, &self.auth.access, head_only).into());
            }
            _ => {
                audit.route = "list";
                return self.list(req, &access, audit, head_only).await.map(Into::into);
            }
        };
        audit.recording = Some(id.to_string());
        let granting = access.granting(id);
        if granting.is_empty() {
            return Err(Refusal::not_permitted(&format!(
                "{} recordings{}",
                id.recording_type,
                prefix_hint(&access, id)
            )));
        }
        audit.groups = granting;
        if let Route::Info(id) = &route {
            audit.route = "info";
            let info = self.player.info(id).await.map_err(|e| Refusal::playback(&e))?;
            return Ok(info_response(&info, head_only).into());
        }
        audit.route = "audio";
        let range = match header_str(req.headers(), header::RANGE) {
            Some(value) => {
                audit.range_requested = Some(value.to_string());
                Some(ByteRange::parse(value).map_err(Refusal::range)?)
            }
            None => None,
        };
        match self.audio(req, id, range, audit, head_only).await {
            // The cached message's version was replaced or deleted: once
            // more, from the catalog (which knows what became of it).
            Err(refusal) if refusal.code == "stale" => self.audio(req, id, range, audit, head_only).await,
            answer => answer,
        }
    }

    /// The audio of one recording (the whole of it, or a range); the
    /// refusal `stale` when it came from the cache and the vault's current
    /// version is no longer the one the cache opened.
    async fn audio(
        &self,
        req: &Request,
        id: &vault::recording::RecordingId,
        range: Option<ByteRange>,
        audit: &mut AuditRecord,
        head_only: bool,
    ) -> Result<Answer, Refusal> {
        let mut stats = OpenStats::default();
        let opened = self.player.open(id, &mut stats).await;
        audit.kms_calls = stats.kms_calls;
        audit.s3_bytes = stats.s3_bytes;
        audit.key_source = match (stats.kms_calls, stats.cache_hit) {
            (0, true) => "cache",
            (0, false) => "none",
            _ => "kms",
        };
        let open = opened.map_err(|e| {
            audit.key_arn = e.key_arn().map(str::to_string);
            Refusal::playback(&e)
        })?;
        audit.key_arn = Some(open.key_arn().to_string());
        let etag = format!("\"{}\"", open.entry.message_id);
        if header_str(req.headers(), header::IF_NONE_MATCH).is_some_and(|v| etag_matches(v, &etag)) {
            let builder = self.headers(StatusCode::NOT_MODIFIED, &open, &etag, None);
            return Ok(builder.body(PlaybackBody::empty()).unwrap_or_else(|_| internal()).into());
        }
        // A range against another version of the recording is ignored: the
        // whole current one is sent (RFC 9110 section 13.1.5).
        let range = range.filter(|_| header_str(req.headers(), header::IF_RANGE).is_none_or(|v| v == etag));
        let len = open.len();
        let (status, served) = match range {
            None => (StatusCode::OK, None),
            Some(r) => match r.resolve(len, self.max_response_bytes) {
                Some(served) => (StatusCode::PARTIAL_CONTENT, Some(served)),
                None => {
                    return Err(Refusal::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "range_not_satisfiable",
                        format!("the recording has {len} bytes: no byte of the requested range is in it"),
                    )
                    .with_header(header::CONTENT_RANGE, format!("bytes */{len}")))
                }
            },
        };
        let builder = self.headers(status, &open, &etag, served.clone());
        let body_len = served.as_ref().map_or(len, |r| r.end - r.start);
        audit.range_served = Some(match &served {
            Some(r) => format!("{}-{}/{len}", r.start, r.end - 1),
            None if len == 0 => format!("*/{len}"),
            None => format!("0-{}/{len}", len - 1),
        });
        if head_only {
            return Ok(builder.body(PlaybackBody::empty()).unwrap_or_else(|_| internal()).into());
        }
        let span = open.span(served).map_err(|e| Refusal::playback(&e))?;
        let mut frames = self.player.frames(&open, &span).await.map_err(|e| Refusal::playback(&e))?;
        // The first batch is authenticated before the status is sent, so a
        // tampered start is an `integrity` response, not a broken stream.
        let first = match frames.next_batch().await {
            Some(batch) => batch.map_err(|e| Refusal::playback(&e))?,
            None => Vec::new(),
        };
        audit.bytes_sent = first.iter().map(|b| b.len() as u64).sum();
        let (tx, rx) = mpsc::channel(STREAM_DEPTH);
        let body = PlaybackBody::streamed(body_len, first, rx);
        Ok(Answer { response: builder.body(body).unwrap_or_else(|_| internal()), rest: Some((frames, tx)) })
    }

    /// `GET /api/recordings?type=&from=&to=&after=&limit=`: the recordings
    /// of a type the person may play, newest first, from the catalog's
    /// index by type and date.
    async fn list(
        &self,
        req: &Request,
        access: &Access,
        audit: &mut AuditRecord,
        head_only: bool,
    ) -> Result<Response<PlaybackBody>, Refusal> {
        let query = parse_query(query_string(req.uri()));
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty());
        let bad = |message: String| Refusal::new(StatusCode::BAD_REQUEST, "bad_query", message);
        let recording_type = param("type").ok_or_else(|| bad("name a recording type: ?type=calls".into()))?;
        audit.recording = Some(format!("{recording_type}/"));
        let (prefixes, groups) = access.prefixes(recording_type);
        if prefixes.is_empty() {
            return Err(Refusal::not_permitted(&format!("{recording_type} recordings")));
        }
        audit.groups = groups;
        let date = |name: &str| -> Result<Option<String>, Refusal> {
            match param(name) {
                None => Ok(None),
                Some(d) if is_date(d) => Ok(Some(d.to_string())),
                Some(d) => Err(bad(format!("{name}={d:?} is not a date: use YYYY-MM-DD"))),
            }
        };
        let limit = match param("limit") {
            None => DEFAULT_LIST_LIMIT,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                .ok_or_else(|| bad(format!("limit={n:?} is not a number from 1 to {MAX_LIST_LIMIT}")))?,
        };
        let mut browse =
            BrowseQuery {
                recording_type: recording_type.to_string(),
                from: date("from")?,
                // Inclusive of the whole day: "~" sorts after every time of it.
                to: date("to")?.map(|d| format!("{d}~")),
                after: match param("after") {
                    None => None,
                    Some(c) => Some(self.cursors.open(recording_type, c).ok_or_else(|| {
                        bad("after= is not a cursor of this list (or it expired): search again".into())
                    })?),
                },
                limit,
            };
        // A prefix grant filters the type's rows: a few index pages at most
        // per answer; the cursor goes on from where this one stopped.
        let mut rows = Vec::new();
        let mut next = None;
        for _ in 0..5 {
            let (page, cursor) = self.player.browse(&browse).await.map_err(|e| Refusal::playback(&e))?;
            rows.extend(page.into_iter().filter(|e| {
                e.deleting.is_none() && prefixes.iter().any(|p| e.id.recording_id.starts_with(p.as_str()))
            }));
            next = cursor;
            match &next {
                Some(c) if rows.len() < limit => browse.after = Some(c.clone()),
                _ => break,
            }
        }
        let recordings: Vec<serde_json::Value> = rows
            .iter()
            .map(|e| {
                serde_json::json!({
                    "recording_type": e.id.recording_type,
                    "recording_id": e.id.recording_id,
                    "encrypted_at": e.encrypted_at,
                    "size": e.plaintext_size,
                    "content_type": e.content_type,
                    "key_arns": e.wrapping_keys,
                    "legal_hold": e.hold.is_some(),
                    "moved_to_region": e.moved_to.as_ref().map(|m| m.region.clone()),
                })
            })
            .collect();
        let body = serde_json::json!({
            "recordings": recordings,
            "next": next.map(|c| self.cursors.seal(recording_type, &c)),
        });
        Ok(json_response(StatusCode::OK, &body, head_only))
    }

    fn headers(
        &self,
        status: StatusCode,
        open: &OpenRecording,
        etag: &str,
        served: Option<std::ops::Range<u64>>,
    ) -> lambda_http::http::response::Builder {
        let len = open.len();
        let body_len = served.as_ref().map_or(len, |r| r.end - r.start);
        let content_type = served_content_type(open.content_type());
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type.as_deref().unwrap_or(OCTET_STREAM))
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::ETAG, etag)
            // Decrypted audio is never kept by a browser or a shared cache.
            .header(header::CACHE_CONTROL, "private, no-store")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if content_type.is_none() {
            // Not audio or video: a browser saves it, never renders it.
            builder = builder.header(header::CONTENT_DISPOSITION, "attachment");
        }
        if status != StatusCode::NOT_MODIFIED {
            builder = builder.header(header::CONTENT_LENGTH, body_len);
        }
        if let Some(r) = served {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {}-{}/{len}", r.start, r.end - 1));
        }
        builder
    }
}

/// Sends the rest of a stream, then writes the request's audit line.
async fn stream_rest(
    mut frames: FrameStream,
    tx: mpsc::Sender<Result<Bytes, StreamAborted>>,
    mut audit: AuditRecord,
    started: Instant,
    log: Arc<dyn AuditLog>,
) {
    audit.outcome = "ok";
    let mut failure = None;
    'batches: while let Some(batch) = frames.next_batch().await {
        match batch {
            Ok(pieces) => {
                for piece in pieces {
                    let n = piece.len() as u64;
                    if tx.send(Ok(piece)).await.is_err() {
                        audit.outcome = "client_gone";
                        break 'batches;
                    }
                    audit.bytes_sent += n;
                }
            }
            Err(e) => {
                audit.outcome = "aborted";
                audit.code = Some(e.code());
                tracing::error!(code = e.code(), recording = ?audit.recording, request_id = %audit.request_id, "stream aborted: {e}");
                failure = Some(StreamAborted(e.code()));
                break;
            }
        }
    }
    audit.s3_bytes += frames.s3_bytes();
    audit.duration_ms = millis(started);
    // The audit line is written before the body ends (cleanly or with the
    // error), so it is out before Lambda considers the invocation done.
    log.record(&audit);
    if let Some(failure) = failure {
        let _ = tx.send(Err(failure)).await;
    }
    drop(tx);
}

fn info_response(info: &vault::playback::RecordingInfo, head_only: bool) -> Response<PlaybackBody> {
    let e = &info.entry;
    let frames = if e.frame_length == 0 { 0 } else { e.plaintext_size / u64::from(e.frame_length) + 1 };
    let body = serde_json::json!({
        "recording_type": e.id.recording_type,
        "recording_id": e.id.recording_id,
        "size": e.plaintext_size,
        "content_type": e.content_type,
        "encrypted_at": e.encrypted_at,
        "wrapping_key_arns": e.wrapping_keys,
        "header_key_arns": info.header_keys,
        "provider": e.provider,
        "frame_length": info.frame_length,
        "frames": frames,
        "algorithm_suite": format!("0x{:04X}", info.suite_id),
        "message_id": e.message_id,
        "ciphertext_size": e.ciphertext_size,
        "vault_key": e.vault_key,
        "vault_version": e.vault_version,
        "checksum_sha256": e.checksum_sha256,
        "rekeyed_at": e.rekeyed_at,
        // Retention: when the policy lets it go, under a legal hold or not.
        "retain_until": e.retain_until,
        "retention_days": e.retention_days,
        "legal_hold": e.hold.as_ref().map(|h| serde_json::json!({ "by": h.by, "reason": h.reason, "at": h.at })),
        "last_hold_released": e.released_hold.as_ref().map(|r| serde_json::json!({
            "hold": { "by": r.hold.by, "reason": r.hold.reason, "at": r.hold.at },
            "released": { "by": r.release.by, "reason": r.release.reason, "at": r.release.at },
        })),
        "being_deleted": e.deleting.is_some(),
    });
    json_response(StatusCode::OK, &body, head_only)
}

fn json_response(status: StatusCode, body: &serde_json::Value, head_only: bool) -> Response<PlaybackBody> {
    let body = body.to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "private, no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(if head_only { PlaybackBody::empty() } else { PlaybackBody::full(body) })
        .unwrap_or_else(|_| internal())
}

/// Who is signed in and what they may play: what the page shows.
fn me_response(
    identity: &Identity,
    access: &Access,
    policy: &crate::auth::access::AccessPolicy,
    head_only: bool,
) -> Response<PlaybackBody> {
    let types: Vec<serde_json::Value> = access
        .types()
        .into_iter()
        .map(|t| {
            let (prefixes, _) = access.prefixes(&t);
            serde_json::json!({ "recording_type": t, "id_prefixes": prefixes })
        })
        .collect();
    let body = serde_json::json!({
        "subject": identity.subject,
        "username": identity.username,
        "email": identity.email,
        "groups": identity.granting_groups(policy),
        "method": identity.method,
        "types": types,
    });
    json_response(StatusCode::OK, &body, head_only)
}

/// ` with ids starting ...` when the person holds prefixes of the type.
fn prefix_hint(access: &Access, id: &vault::recording::RecordingId) -> String {
    let (prefixes, _) = access.prefixes(&id.recording_type);
    if prefixes.is_empty() {
        String::new()
    } else {
        format!(" outside {}", prefixes.iter().map(|p| format!("{p}*")).collect::<Vec<_>>().join(", "))
    }
}

/// `YYYY-MM-DD`.
fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn header_str(headers: &HeaderMap<HeaderValue>, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The audit record's request fields: who asked, from where, for what.
fn audit_record(req: &Request) -> AuditRecord {
    let mut audit = AuditRecord {
        audit: "playback",
        phase: "end",
        method: req.method().to_string(),
        route: "none",
        key_source: "none",
        outcome: "ok",
        auth: "none",
        ..Default::default()
    };
    if let Some(ctx) = req.lambda_context_ref() {
        audit.request_id = ctx.request_id.clone();
    }
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        let iam = ctx.authorizer.as_ref().and_then(|a| a.iam.as_ref());
        audit.principal = iam.and_then(|i| i.user_arn.clone().or_else(|| i.caller_id.clone()));
        audit.account_id = iam.and_then(|i| i.account_id.clone()).or_else(|| ctx.account_id.clone());
        audit.source_ip = ctx.http.source_ip.clone();
        audit.user_agent = ctx.http.user_agent.clone();
        if audit.request_id.is_empty() {
            audit.request_id = ctx.request_id.clone().unwrap_or_default();
        }
    }
    audit
}
