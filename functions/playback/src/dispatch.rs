//! The playback handler: one per container. Each request is routed
//! ([`crate::route`]), answered by the module of its route (the page and
//! sign-in: [`crate::auth::signin`]; the audio: [`crate::audio`]; the JSON
//! API: [`crate::api`]), refused in one shape ([`crate::refusal`]), and
//! written to the audit log.

use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt, Response};
use vault::playback::RecordingPlayer;
use vault::ports::catalog::{RecordingBrowser, RecordingCatalog};
use vault::ports::keys::KeyManagement;
use vault::ports::objects::ObjectStore;

use crate::audit::{AuditLog, AuditRecord};
use crate::auth::provider::IdentityProvider;
use crate::auth::signin::Auth;
use crate::body::PlaybackBody;
use crate::page::{static_response, PAGE};
use crate::route::{parse_query, query_string};
use crate::route::{Route, ASSETS};
use inbound::range::ByteRange;

use crate::audit::millis;
use crate::refusal::prefix_hint;
use crate::refusal::Refusal;
use crate::response::Answer;
use crate::route::header_str;

/// The playback handler: one per container, shared by every request.
pub struct Handler<K, O, C, P> {
    pub(crate) player: Arc<RecordingPlayer<K, O, C>>,
    pub(crate) max_response_bytes: u64,
    pub(crate) audit: Arc<dyn AuditLog>,
    pub(crate) auth: Auth<P>,
    pub(crate) cursors: crate::auth::session::CursorKey,
    /// The player's front's secret: `None`, no viewer address is trusted.
    pub(crate) front: Option<crate::front::FrontKey>,
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
        Self { player: Arc::new(player), max_response_bytes, audit, auth, cursors, front: None }
    }

    /// Trusts the viewer's address of requests that carry the front's
    /// secret ([`crate::front`]).
    pub fn with_front(mut self, front: crate::front::FrontKey) -> Self {
        self.front = Some(front);
        self
    }

    /// The player, for its cache.
    pub fn player(&self) -> &RecordingPlayer<K, O, C> {
        &self.player
    }

    /// Answers one request. Never fails: every error is a response.
    pub async fn handle(&self, req: Request) -> Response<PlaybackBody> {
        let started = Instant::now();
        let mut audit = audit_record(&req, self.front.as_ref());
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
                self.send_rest(frames, tx, audit, started);
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
                return Ok(self.me(&identity, &access, head_only).into());
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
            return self.info(id, head_only).await.map(Into::into);
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
}

/// The audit record's request fields: who asked, from where, for what.
pub(crate) fn audit_record(req: &Request, front: Option<&crate::front::FrontKey>) -> AuditRecord {
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
        match crate::front::viewer_ip(req.headers(), front) {
            Some(viewer) => {
                audit.via = "front";
                audit.source_ip = Some(viewer);
                audit.edge_ip = ctx.http.source_ip.clone();
            }
            None => {
                audit.via = "direct";
                audit.source_ip = ctx.http.source_ip.clone();
                if req.headers().contains_key(crate::front::VIEWER_ADDRESS) && front.is_some() {
                    // A direct caller naming an address, or a front whose
                    // secret is out of date (rotated without updating the
                    // distribution): either way, worth a look.
                    tracing::warn!(
                        code = "viewer_address_unvouched",
                        source_ip = ctx.http.source_ip.as_deref().unwrap_or(""),
                        "CloudFront-Viewer-Address without the front's secret: ignored, the request's own address is recorded"
                    );
                }
            }
        }
        audit.user_agent = ctx.http.user_agent.clone();
        if audit.request_id.is_empty() {
            audit.request_id = ctx.request_id.clone().unwrap_or_default();
        }
    }
    audit
}
