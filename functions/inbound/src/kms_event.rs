//! KMS events as EventBridge delivers them (CloudTrail records of API
//! calls, and KMS's own deletion and rotation events): which key, what
//! happened, who did it. The guardian's domain ([`vault::guardian`]) takes
//! the [`KeyEvent`] read here.

use serde_json::Value;
use vault::arn::KmsArn;
use vault::errors::{ErrorKind, OperationError};
use vault::guardian::{KeyEvent, KeyEventKind};

/// An event callvault cannot read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("malformed KMS event: {0}")]
pub struct EventError(pub String);

impl OperationError for EventError {
    fn code(&self) -> &'static str {
        "bad_event"
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::BadRequest
    }
}

/// What an EventBridge event is to the guardian.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An event about a key.
    Key(Box<KeyEvent>),
    /// A KMS event the guardian does not watch (another API call, a call
    /// that failed for another reason than access): counted, not alerted.
    Unwatched(String),
}

const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";
const CRYPTO_CALLS: &[&str] = &["Decrypt", "Encrypt", "ReEncrypt", "GenerateDataKey"];

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Reads an EventBridge event from `aws.kms`.
pub fn parse_event(v: &Value) -> Result<Parsed, EventError> {
    let bad = |what: &str| EventError(what.to_string());
    if !v.is_object() {
        return Err(bad("the event is not a JSON object"));
    }
    if str_at(v, &["source"]) != Some("aws.kms") {
        return Err(bad("the event's source is not aws.kms"));
    }
    let id = str_at(v, &["id"]).ok_or_else(|| bad("the event has no id"))?.to_string();
    let detail_type = str_at(v, &["detail-type"]).ok_or_else(|| bad("the event has no detail-type"))?;
    let detail = v.get("detail").filter(|d| d.is_object()).ok_or_else(|| bad("the event has no detail"))?;
    let region = str_at(v, &["region"]).unwrap_or_default().to_string();
    let account = str_at(v, &["account"]).unwrap_or_default().to_string();
    let time = str_at(v, &["time"]).unwrap_or_default().to_string();
    let mut event = KeyEvent { id, region, account, time, ..Default::default() };
    match detail_type {
        CLOUDTRAIL => {
            let name = str_at(detail, &["eventName"]).ok_or_else(|| bad("the CloudTrail record has no eventName"))?;
            event.operation = name.to_string();
            event.error_code = str_at(detail, &["errorCode"]).map(str::to_string);
            event.error_message = str_at(detail, &["errorMessage"]).map(str::to_string);
            event.kind = match &event.error_code {
                Some(code) if code.contains("AccessDenied") || code == "UnauthorizedOperation" => {
                    if CRYPTO_CALLS.iter().any(|c| name.starts_with(c)) {
                        Some(KeyEventKind::AccessDenied)
                    } else if KeyEventKind::from_api_call(name).is_some() {
                        // A guardrail stopped a change to the key: seen, not buried.
                        Some(KeyEventKind::ManagementDenied)
                    } else {
                        return Ok(Parsed::Unwatched(format!("{name} denied")));
                    }
                }
                Some(code) => return Ok(Parsed::Unwatched(format!("{name} failed with {code}"))),
                None => match KeyEventKind::from_api_call(name) {
                    Some(kind) => Some(kind),
                    None => return Ok(Parsed::Unwatched(name.to_string())),
                },
            };
            if let Some(t) = str_at(detail, &["eventTime"]) {
                event.time = t.to_string();
            }
            if let Some(r) = str_at(detail, &["awsRegion"]) {
                event.region = r.to_string();
            }
            if let Some(a) = str_at(detail, &["recipientAccountId"]) {
                event.account = a.to_string();
            }
            let who = detail.get("userIdentity").unwrap_or(&Value::Null);
            event.principal = str_at(who, &["arn"]).or_else(|| str_at(who, &["principalId"])).map(str::to_string);
            event.principal_type = str_at(who, &["type"]).map(str::to_string);
            event.mfa = str_at(who, &["sessionContext", "attributes", "mfaAuthenticated"])
                .or_else(|| str_at(detail, &["additionalEventData", "MFAUsed"]))
                .map(|m| m.eq_ignore_ascii_case("true") || m.eq_ignore_ascii_case("yes"));
            event.source_ip = str_at(detail, &["sourceIPAddress"]).map(str::to_string);
            event.invoked_by = str_at(detail, &["userIdentity", "invokedBy"]).map(str::to_string);
            event.user_agent = str_at(detail, &["userAgent"]).map(str::to_string);
            event.request_id = str_at(detail, &["requestID"]).map(str::to_string);
            event.pending_window_days =
                detail.get("requestParameters").and_then(|p| p.get("pendingWindowInDays")).and_then(Value::as_u64);
            event.alias = str_at(detail, &["requestParameters", "aliasName"]).map(str::to_string);
            // Alias events list the alias's ARN among the resources (also
            // typed AWS::KMS::Key): the first resource that is a key wins,
            // then the key the request or the response names.
            let resources = detail.get("resources").and_then(Value::as_array);
            let from_resources = resources.and_then(|rs| {
                rs.iter().filter_map(|r| str_at(r, &["ARN"])).find(|a| KmsArn::parse(a).is_some_and(|a| a.is_key()))
            });
            let named = [
                &["requestParameters", "keyId"][..],
                &["requestParameters", "targetKeyId"],
                &["responseElements", "keyId"],
                &["requestParameters", "sourceKeyId"],
                &["requestParameters", "destinationKeyId"],
            ]
            .iter()
            .filter_map(|path| str_at(detail, path))
            .find(|k| !k.starts_with("alias/") && !k.contains(":alias/"));
            let Some(key) = from_resources.or(named) else {
                // A denied call that names no key (CloudTrail leaves the key
                // out when the caller may not even see it) cannot be tied to
                // a recording key: counted, not alerted.
                if matches!(event.kind, Some(KeyEventKind::AccessDenied | KeyEventKind::ManagementDenied)) {
                    return Ok(Parsed::Unwatched(format!("{name} denied, naming no key")));
                }
                return Err(bad("the CloudTrail record names no KMS key"));
            };
            event.key_arn = key_arn(key, &event.region, &event.account)
                .ok_or_else(|| bad(&format!("{key:?} is not a KMS key ARN or id")))?;
        }
        "KMS CMK Deletion" | "KMS CMK Rotation" => {
            event.kind =
                Some(if detail_type == "KMS CMK Deletion" { KeyEventKind::Deleted } else { KeyEventKind::Rotated });
            event.operation = detail_type.to_string();
            let key = v
                .get("resources")
                .and_then(Value::as_array)
                .and_then(|rs| rs.iter().find_map(Value::as_str))
                .or_else(|| str_at(detail, &["key-id"]))
                .ok_or_else(|| bad("the KMS event names no key"))?;
            event.key_arn = key_arn(key, &event.region, &event.account)
                .ok_or_else(|| bad(&format!("{key:?} is not a KMS key ARN or id")))?;
        }
        other => return Ok(Parsed::Unwatched(other.to_string())),
    }
    Ok(Parsed::Key(Box::new(event)))
}

/// The key ARN of `key`: an ARN as is, a bare key id in `region`/`account`.
fn key_arn(key: &str, region: &str, account: &str) -> Option<String> {
    if let Some(arn) = KmsArn::parse(key) {
        return arn.is_key().then(|| key.to_string());
    }
    let bare = key.strip_prefix("key/").unwrap_or(key);
    let looks_like_id = !bare.is_empty()
        && bare.len() <= 64
        && bare.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-' || b.is_ascii_lowercase());
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    (looks_like_id && !region.is_empty() && !account.is_empty())
        .then(|| format!("arn:{partition}:kms:{region}:{account}:key/{bare}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vault::guardian::KeyEventKind;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn cloudtrail(name: &str, extra: Value) -> Value {
        let mut v = json!({
            "version": "0", "id": "ev-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
            "account": "111122223333", "time": "2026-11-24T09:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {
                "eventName": name, "eventTime": "2026-11-24T09:00:01Z", "awsRegion": "us-east-1",
                "recipientAccountId": "111122223333", "sourceIPAddress": "203.0.113.10",
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                    "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}},
                "requestParameters": {"keyId": ARN},
            }
        });
        if let Value::Object(extra) = extra {
            for (k, x) in extra {
                v["detail"][k] = x;
            }
        }
        v
    }

    fn key_event(v: &Value) -> KeyEvent {
        match parse_event(v).unwrap() {
            Parsed::Key(e) => *e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cloudtrail_calls_are_read_with_who_when_and_which_key() {
        let e = key_event(&cloudtrail("DisableKey", json!({})));
        assert_eq!(e.kind, Some(KeyEventKind::Disabled));
        assert_eq!(e.key_arn, ARN);
        assert_eq!(e.principal.as_deref(), Some("arn:aws:sts::111122223333:assumed-role/Admin/alice"));
        assert_eq!(
            (e.mfa, e.source_ip.as_deref(), e.time.as_str()),
            (Some(false), Some("203.0.113.10"), "2026-11-24T09:00:01Z")
        );
        // A bare key id is completed from the record's region and account.
        let e = key_event(&cloudtrail(
            "EnableKey",
            json!({"requestParameters": {"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}}),
        ));
        assert_eq!(e.key_arn, ARN);
    }

    #[test]
    fn denied_cryptographic_calls_are_access_denials_and_other_failures_are_unwatched() {
        let denied = cloudtrail(
            "Decrypt",
            json!({"errorCode": "AccessDenied", "errorMessage": "not authorized",
            "requestParameters": {}, "resources": [{"type": "AWS::KMS::Key", "ARN": ARN}]}),
        );
        assert_eq!(key_event(&denied).kind, Some(KeyEventKind::AccessDenied));
        let gdk = cloudtrail("GenerateDataKeyWithoutPlaintext", json!({"errorCode": "AccessDeniedException"}));
        assert_eq!(key_event(&gdk).kind, Some(KeyEventKind::AccessDenied));
        assert!(matches!(
            parse_event(&cloudtrail("DisableKey", json!({"errorCode": "NotFoundException"}))),
            Ok(Parsed::Unwatched(_))
        ));
        assert!(matches!(parse_event(&cloudtrail("ListKeys", json!({}))), Ok(Parsed::Unwatched(_))));
    }

    #[test]
    fn denied_changes_grants_and_replicas_are_watched() {
        for name in ["ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy", "CreateGrant", "ReplicateKey"] {
            let denied = cloudtrail(name, json!({"errorCode": "AccessDenied", "errorMessage": "MFA required"}));
            let e = key_event(&denied);
            assert_eq!((e.kind, e.operation.as_str()), (Some(KeyEventKind::ManagementDenied), name));
        }
        assert_eq!(key_event(&cloudtrail("CreateGrant", json!({}))).kind, Some(KeyEventKind::GrantCreated));
        assert_eq!(key_event(&cloudtrail("ReplicateKey", json!({}))).kind, Some(KeyEventKind::Replicated));
        let denied_list = cloudtrail("ListGrants", json!({"errorCode": "AccessDenied"}));
        assert!(matches!(parse_event(&denied_list), Ok(Parsed::Unwatched(_))));
    }

    #[test]
    fn a_call_made_through_cloudformation_says_so() {
        let via = cloudtrail(
            "PutKeyPolicy",
            json!({"userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Deployer/ci",
                "invokedBy": "cloudformation.amazonaws.com"}, "sourceIPAddress": "cloudformation.amazonaws.com"}),
        );
        let e = key_event(&via);
        assert_eq!(e.invoked_by.as_deref(), Some("cloudformation.amazonaws.com"));
        assert!(e.via_cloudformation());
        assert!(!key_event(&cloudtrail("PutKeyPolicy", json!({}))).via_cloudformation());
    }

    #[test]
    fn alias_events_name_the_key_not_the_alias() {
        let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/recordings";
        let v = cloudtrail(
            "DeleteAlias",
            json!({"requestParameters": {"aliasName": "alias/recordings"},
                "resources": [{"type": "AWS::KMS::Key", "ARN": alias_arn}, {"type": "AWS::KMS::Key", "ARN": ARN}]}),
        );
        let e = key_event(&v);
        assert_eq!((e.kind, e.key_arn.as_str()), (Some(KeyEventKind::AliasDeleted), ARN));
        assert_eq!(e.alias.as_deref(), Some("alias/recordings"));
        let v = cloudtrail(
            "UpdateAlias",
            json!({"requestParameters": {"aliasName": "alias/recordings", "targetKeyId": ARN}, "resources": [{"ARN": alias_arn}]}),
        );
        assert_eq!(key_event(&v).key_arn, ARN);
        // A denial that names no key is counted, not malformed.
        let v = cloudtrail(
            "Decrypt",
            json!({"errorCode": "AccessDenied", "requestParameters": {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}}),
        );
        assert!(matches!(parse_event(&v), Ok(Parsed::Unwatched(_))));
    }

    #[test]
    fn kms_own_events_are_read() {
        let v = json!({"id": "ev-3", "detail-type": "KMS CMK Rotation", "source": "aws.kms", "account": "111122223333",
            "region": "us-east-1", "time": "2026-12-24T09:00:00Z", "resources": [ARN], "detail": {"key-id": "1234abcd-12ab-34cd-56ef-1234567890ab"}});
        assert_eq!(key_event(&v).kind, Some(KeyEventKind::Rotated));
        let v = json!({"id": "ev-2", "detail-type": "KMS CMK Deletion", "source": "aws.kms", "account": "111122223333",
            "region": "us-east-1", "time": "2026-12-24T09:00:00Z", "resources": [ARN], "detail": {"key-id": "1234abcd-12ab-34cd-56ef-1234567890ab"}});
        let e = key_event(&v);
        assert_eq!((e.kind, e.key_arn.as_str()), (Some(KeyEventKind::Deleted), ARN));
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        for v in [
            json!(null),
            json!([1]),
            json!({"source": "aws.s3", "id": "x"}),
            json!({"source": "aws.kms", "id": "x"}),
            json!({"source": "aws.kms", "id": "x", "detail-type": CLOUDTRAIL, "detail": {}}),
            json!({"source": "aws.kms", "id": "x", "detail-type": CLOUDTRAIL, "detail": {"eventName": "DisableKey"}}),
            json!({"source": "aws.kms", "id": "x", "detail-type": CLOUDTRAIL, "detail": {"eventName": "DisableKey", "requestParameters": {"keyId": "../etc"}}}),
        ] {
            assert!(parse_event(&v).is_err(), "{v}");
        }
    }
}
