//! The JSON API: the list (`GET /api/recordings`), a recording's facts
//! (`/recordings/<type>/<id>/info`) and who is signed in (`/api/me`).

use lambda_http::http::StatusCode;
use lambda_http::{Request, Response};
use vault::ports::catalog::{BrowseQuery, RecordingBrowser, RecordingCatalog};
use vault::ports::keys::KeyManagement;
use vault::ports::objects::ObjectStore;

use crate::audit::AuditRecord;
use crate::auth::access::Access;
use crate::auth::provider::IdentityProvider;
use crate::auth::Identity;
use crate::body::PlaybackBody;
use crate::route::{parse_query, query_string};

use crate::dispatch::Handler;
use crate::refusal::Refusal;
use crate::response::json_response;

/// Most rows of one page of the list.
pub const MAX_LIST_LIMIT: usize = 100;
const DEFAULT_LIST_LIMIT: usize = 25;

impl<K, O, C, P> Handler<K, O, C, P>
where
    K: KeyManagement + 'static,
    O: ObjectStore + 'static,
    C: RecordingCatalog + RecordingBrowser + 'static,
    P: IdentityProvider,
{
    /// `/recordings/<type>/<id>/info`: what the catalog knows of one.
    pub(crate) async fn info(
        &self,
        id: &vault::recording::RecordingId,
        head_only: bool,
    ) -> Result<Response<PlaybackBody>, Refusal> {
        let info = self.player.info(id).await.map_err(|e| Refusal::playback(&e))?;
        Ok(info_response(&info, head_only))
    }

    /// `/api/me`: who is signed in and what they may play.
    pub(crate) fn me(&self, identity: &Identity, access: &Access, head_only: bool) -> Response<PlaybackBody> {
        me_response(identity, access, &self.auth.access, head_only)
    }

    /// `GET /api/recordings?type=&from=&to=&after=&limit=`: the recordings
    /// of a type the person may play, newest first, from the catalog's
    /// index by type and date.
    pub(crate) async fn list(
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

/// `YYYY-MM-DD`.
pub(crate) fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
