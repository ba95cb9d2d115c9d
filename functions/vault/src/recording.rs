//! The nouns every capability shares: a recording's identity, what the
//! catalog holds about it, and which keys each recording type is wrapped
//! under.

use std::collections::BTreeMap;

use envelope::{EncryptionContext, Header};

use crate::arn::{check_region, region_of, KmsArn};

/// A recording's identity: its type and its id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RecordingId {
    pub recording_type: String,
    pub recording_id: String,
}

impl std::fmt::Display for RecordingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.recording_type, self.recording_id)
    }
}

/// What the catalog holds about one encrypted recording.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingEntry {
    pub id: RecordingId,
    /// Key of the vault object (bucket is configuration).
    pub vault_key: String,
    /// Version of the vault object, when the vault bucket is versioned.
    pub vault_version: Option<String>,
    /// Every key that wraps the data key, primary first.
    pub wrapping_keys: Vec<String>,
    /// Keyring of the primary key (`aws-kms` or `aws-kms-rsa`).
    pub provider: String,
    /// The message id, hex.
    pub message_id: String,
    pub frame_length: u32,
    pub plaintext_size: u64,
    pub ciphertext_size: u64,
    /// The vault object's S3 SHA-256 checksum, as S3 reports it.
    pub checksum_sha256: String,
    pub content_type: String,
    /// RFC 3339, UTC.
    pub encrypted_at: String,
    /// ETag of the ingest object that was encrypted.
    pub source_etag: String,
    pub source_version: Option<String>,
    /// RFC 3339, UTC: when it was last re-keyed onto its present keys (a
    /// new message; `encrypted_at` stays when the recording first came in).
    pub rekeyed_at: Option<String>,
    /// Set when the recording moved to another region's deployment: where
    /// it went. The row stays as a marker; its keys no longer count it.
    pub moved_to: Option<MovedTo>,
    /// RFC 3339, UTC: when its type's retention policy lets it go
    /// (`encrypted_at` plus `retention_days`); `None`: kept until erased
    /// (no policy for its type, or a row the retention run has not yet
    /// stamped). A re-key keeps it.
    pub retain_until: Option<String>,
    /// The policy `retain_until` was computed under, in days.
    pub retention_days: Option<u32>,
    /// A legal hold: never deleted, by retention or erasure, while set.
    pub hold: Option<LegalHold>,
    /// The last hold released, and who released it, why and when.
    pub released_hold: Option<ReleasedHold>,
    /// Set while a deletion is under way (retention or erasure): the
    /// versions it deletes, listed before the first one goes, so that a
    /// rerun resumes at any boundary.
    pub deleting: Option<Deleting>,
    /// Set by the catalog write that names a new vault version (ingest, a
    /// re-key, a move into this region), and cleared once that version is
    /// confirmed tagged `catalogued`: while it is set, the version may still
    /// be tagged `pending`, which a lifecycle rule expires. The tag sweep
    /// finds marked rows through a sparse index and finishes their tags.
    pub tags_due: Option<TagsDue>,
}

/// A catalogued version whose `catalogued` tag is not yet confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagsDue {
    /// RFC 3339, UTC: when the catalog named the version. `None` once the
    /// tag sweep has tagged it: the row then leaves the sweep's index, and
    /// the mark only remembers `from_keys` until a re-key supersedes the
    /// version it replaced.
    pub since: Option<String>,
    /// The keys the recording was under before (a re-key): until the tags
    /// are finished, the version it replaced may still be the only one
    /// tagged `catalogued`, so `rekey --from-key` selects the row and `keys
    /// retire` refuses these keys.
    pub from_keys: Vec<String>,
}

/// A legal hold on a recording: who set it, why, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegalHold {
    pub by: String,
    pub reason: String,
    /// RFC 3339, UTC.
    pub at: String,
}

/// A legal hold that was released: the hold, and its release (who
/// released it, why, when).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleasedHold {
    pub hold: LegalHold,
    pub release: LegalHold,
}

/// A deletion under way: which run, why, and the versions it deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleting {
    /// The run (retention) or request (erasure) that deletes it.
    pub run: String,
    /// `retention` or `erasure`.
    pub reason: String,
    /// Every version of the vault object when the deletion was marked.
    pub versions: Vec<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
}

impl RecordingEntry {
    /// Whether `key_arn` wraps this recording's data key (a multi-Region
    /// key in any of its regions).
    pub fn is_under(&self, key_arn: &str) -> bool {
        self.wrapping_keys.iter().any(|k| crate::arn::same_key(k, key_arn))
    }

    /// Whether `key_arn` is among the keys of a re-key whose tags are not
    /// yet finished (see [`TagsDue`]).
    pub fn was_under(&self, key_arn: &str) -> bool {
        self.tags_due.as_ref().is_some_and(|t| t.from_keys.iter().any(|k| crate::arn::same_key(k, key_arn)))
    }

    /// The keys whose usage counts this recording: its wrapping keys, none
    /// once it moved to another region (the row is a marker there).
    pub fn counted_keys(&self) -> &[String] {
        // A row being deleted still counts until the catalog write that
        // removes it: that one step takes it off its keys.
        if self.moved_to.is_some() {
            &[]
        } else {
            &self.wrapping_keys
        }
    }
}

/// Where a recording moved: another region's vault and catalog.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MovedTo {
    pub region: String,
    pub vault_bucket: String,
    pub catalog_table: String,
    /// RFC 3339, UTC.
    pub moved_at: String,
}

impl std::fmt::Display for MovedTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (vault {}, catalog {}, since {})",
            self.region, self.vault_bucket, self.catalog_table, self.moved_at
        )
    }
}

/// Splits an ingest (or vault) object key, `<type>/<id>`, into the
/// recording's type and id.
pub fn route(key: &str) -> Option<RecordingId> {
    let (ty, id) = key.split_once('/')?;
    (!ty.is_empty() && !id.is_empty() && !id.ends_with('/'))
        .then(|| RecordingId { recording_type: ty.to_string(), recording_id: id.to_string() })
}

/// Wrapping keys per recording type: each is an encrypted data key in every
/// message and an item in the catalog transaction.
pub const MAX_KEYS_PER_TYPE: usize = 10;

/// Recording type -> wrapping key ARNs (primary first, then
/// disaster-recovery keys), as configured in `RECORDING_KEYS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingKeys(BTreeMap<String, Vec<String>>);

impl RecordingKeys {
    /// Parses the JSON object `{"<type>": ["<key ARN>", ...], ...}` and
    /// checks it: at least one type, valid type names, at least one key ARN
    /// per type, the primary in `region`. Types that share their keys may
    /// share an entry, `{"calls,screens": [...]}` (how template.yaml writes
    /// its RecordingTypes parameter).
    pub fn parse(json: &str, region: &str) -> Result<Self, String> {
        let raw = serde_json::from_str(json).map_err(|e| {
            format!("not a JSON object of recording type to a list of key ARNs ({e}); example: {{\"calls\": [\"arn:aws:kms:{region}:111122223333:key/...\"]}}")
        })?;
        let map = Self::expand(raw)?;
        if map.is_empty() {
            return Err("configures no recording type".into());
        }
        for (ty, keys) in &map {
            if ty.is_empty() || ty.contains('/') || ty.len() > 128 {
                return Err(format!("recording type {ty:?} must be 1 to 128 characters without '/'"));
            }
            let Some(primary) = keys.first() else {
                return Err(format!("recording type {ty:?} has no key"));
            };
            if keys.len() > MAX_KEYS_PER_TYPE {
                return Err(format!(
                    "recording type {ty:?} has {} keys; at most {MAX_KEYS_PER_TYPE} (a primary and disaster-recovery keys)",
                    keys.len()
                ));
            }
            for key in keys {
                if !KmsArn::parse(key).is_some_and(|a| a.is_key()) {
                    return Err(format!(
                        "{key:?} (recording type {ty:?}) is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
                    ));
                }
            }
            check_region(primary, region).map_err(|e| format!("recording type {ty:?}: {e}"))?;
        }
        Ok(Self(map))
    }

    /// Parses like [`RecordingKeys::parse`] without requiring the primary
    /// keys to be in one region: for the audit, which reports a primary
    /// elsewhere as non-compliant rather than refusing to start.
    pub fn parse_any_region(json: &str) -> Result<Self, String> {
        let map = Self::expand(serde_json::from_str(json).map_err(|e| e.to_string())?)?;
        let region = map
            .values()
            .filter_map(|keys| keys.first())
            .find_map(|k| region_of(k).map(str::to_string))
            .unwrap_or_default();
        let checked = Self::parse(json, &region);
        match checked {
            Ok(keys) => Ok(keys),
            // Only the region check may fail differently: re-check the rest per type.
            Err(_) => {
                for (ty, keys) in &map {
                    let Some(primary) = keys.first() else { return Err(format!("recording type {ty:?} has no key")) };
                    let one = serde_json::json!({ ty: keys }).to_string();
                    Self::parse(&one, region_of(primary).unwrap_or_default())?;
                }
                Ok(Self(map))
            }
        }
    }

    /// The JSON object's entries, those for several types (`"a,b"`) split.
    fn expand(raw: BTreeMap<String, Vec<String>>) -> Result<BTreeMap<String, Vec<String>>, String> {
        let mut map = BTreeMap::new();
        for (types, keys) in raw {
            for ty in types.split(',').map(str::trim) {
                if map.insert(ty.to_string(), keys.clone()).is_some() {
                    return Err(format!("recording type {ty:?} is configured twice"));
                }
            }
        }
        Ok(map)
    }

    /// The keys for a recording type.
    pub fn get(&self, recording_type: &str) -> Option<&[String]> {
        self.0.get(recording_type).map(Vec::as_slice)
    }

    /// The configured types.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The types whose new recordings are wrapped under `key_arn`.
    pub fn types_using(&self, key_arn: &str) -> Vec<String> {
        self.0.iter().filter(|(_, keys)| keys.iter().any(|k| k == key_arn)).map(|(t, _)| t.clone()).collect()
    }
}

/// The encryption context of every message of a recording: the
/// organisation and the recording's type and id, authenticated in the
/// header, bound to the wrapped data key (KMS checks it on Decrypt, and it
/// names the recording in every CloudTrail entry), and checked again on
/// every read, so a message can never be passed off as another recording's.
/// Encrypt-recording adds the `content_type` it was uploaded with.
pub fn encryption_context(org: &str, id: &RecordingId) -> EncryptionContext {
    [("org", org), ("recording_type", id.recording_type.as_str()), ("recording_id", id.recording_id.as_str())]
        .into_iter()
        .collect()
}

impl RecordingEntry {
    /// Whether `header` is the message this entry catalogues: its message id
    /// and frame length. The error says, in words, what differs.
    pub fn check_header(&self, header: &Header) -> Result<(), &'static str> {
        if hex::encode(header.message_id) != self.message_id {
            return Err("the vault object is another message than the catalogued one");
        }
        if header.frame_length != self.frame_length {
            return Err("the vault object's frame length is not the catalogued one");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const DR: &str = "arn:aws:kms:us-west-2:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";

    #[test]
    fn recording_keys_accept_a_primary_here_and_dr_keys_anywhere() {
        let keys = RecordingKeys::parse(&format!(r#"{{"calls": ["{ARN}", "{DR}"]}}"#), "us-east-1").unwrap();
        assert_eq!(keys.get("calls").unwrap(), [ARN, DR]);
        assert!(keys.get("voicemail").is_none());
    }

    #[test]
    fn types_that_share_their_keys_may_share_an_entry() {
        let keys = RecordingKeys::parse(&format!(r#"{{"calls, screens": ["{ARN}"], "chat": ["{ARN}"]}}"#), "us-east-1")
            .unwrap();
        assert_eq!(keys.types().collect::<Vec<_>>(), ["calls", "chat", "screens"]);
        assert_eq!(keys.get("screens"), Some(&[ARN.to_string()][..]));
        let any = RecordingKeys::parse_any_region(&format!(r#"{{"calls,screens": ["{ARN}"]}}"#)).unwrap();
        assert_eq!(any, keys_of(&[("calls", ARN), ("screens", ARN)]));
    }

    fn keys_of(entries: &[(&str, &str)]) -> RecordingKeys {
        RecordingKeys(entries.iter().map(|(t, k)| (t.to_string(), vec![k.to_string()])).collect())
    }

    #[test]
    fn recording_keys_refuse_what_a_user_can_get_wrong() {
        let bad = [
            ("", "not a JSON object"),
            ("[]", "not a JSON object"),
            ("{}", "no recording type"),
            (r#"{"calls": []}"#, "has no key"),
            (r#"{"calls": ["alias/x"]}"#, "not a KMS key ARN"),
            (&format!(r#"{{"calls": ["{ARN}".replace("key/", "alias/")]}}"#), "not a JSON object"),
            (&format!(r#"{{"a/b": ["{ARN}"]}}"#), "without '/'"),
            (&format!(r#"{{"calls": ["{DR}"]}}"#), "us-west-2"),
            (&format!(r#"{{"calls,screens": ["{ARN}"], "calls": ["{ARN}"]}}"#), "\"calls\" is configured twice"),
            (&format!(r#"{{"calls,": ["{ARN}"]}}"#), "must be 1 to 128 characters"),
        ];
        for (json, expected) in bad {
            let err = RecordingKeys::parse(json, "us-east-1").unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn keys_route_to_type_and_id() {
        let id = route("calls/2026/11/r 1.wav").unwrap();
        assert_eq!((id.recording_type.as_str(), id.recording_id.as_str()), ("calls", "2026/11/r 1.wav"));
        for bad in ["calls", "calls/", "/x", "calls/dir/", ""] {
            assert!(route(bad).is_none(), "{bad}");
        }
    }
}
