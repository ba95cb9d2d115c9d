//! `callvault hold set|release` and `callvault erase`: requests to the
//! retention duty functions' IAM-authenticated Function URLs, SigV4-signed
//! with the caller's own credentials. Each duty has its own URL and its own
//! operators' policy (template.yaml): holding, erasing, and erasing past a
//! governance-mode retention. Lambda authenticates the caller and hands
//! the function its ARN: the hold and the evidence name that principal,
//! and the command sends no name of its own.

use serde_json::{json, Value};

use crate::aws::Aws;
use crate::CliError;

/// The codes a duty function answers with (any other is `function_error`).
const CODES: &[&str] = &[
    "not_found",
    "legal_hold",
    "compliance_retention",
    "governance_retention",
    "in_progress",
    "moved",
    "deleting",
    "not_held",
    "request_mismatch",
    "bad_request",
    "duty_not_granted",
    "caller_unauthenticated",
    "method_not_allowed",
    "access_denied",
    "catalog_unavailable",
    "catalog_conflict",
    "catalog_refused",
    "catalog_missing",
    "catalog_malformed",
    "s3_unavailable",
    "s3_refused",
    "claim_lost",
];

/// Why a request did not go through, and whether the function may have
/// begun it (a failure, a timeout: an erasure resumes with `--request-id`)
/// rather than refused it before or instead of deleting anything (Lambda's
/// own 403, a refusal the function answered with a 4xx status).
struct Failed {
    error: CliError,
    may_have_begun: bool,
}

impl From<CliError> for Failed {
    fn from(error: CliError) -> Self {
        // Nothing was sent (usage, credentials) or no answer came (which may be mid-way).
        let may_have_begun = error.code == "endpoint_unreachable";
        Failed { error, may_have_begun }
    }
}

/// Sends one request to a duty's URL; its answer, or why not.
async fn request(url: &str, duty: &Duty, body: Value) -> Result<Value, Failed> {
    let aws = Aws::from_env().await;
    let answer = aws.post_signed(url, &body).await?;
    if answer.status == 200 {
        return Ok(answer.body);
    }
    let may_have_begun = answer.status >= 500;
    // The function's own refusal or failure: its stable code and message.
    if let Some(code) = answer.body["code"].as_str() {
        let message = answer.body["message"].as_str().unwrap_or("the function refused").to_string();
        let error = match CODES.iter().find(|c| **c == code) {
            Some(c) => CliError { code: c, message },
            None => CliError { code: "function_error", message: format!("{code}: {message}") },
        };
        return Err(Failed { error, may_have_begun });
    }
    // Lambda's own answer, before the function ran (or a crash: 502).
    let said = match &answer.body {
        Value::Object(o) => o.get("Message").or_else(|| o.get("message")).map(|m| m.to_string()).unwrap_or_default(),
        other => other.to_string(),
    };
    let error = match answer.status {
        403 => CliError {
            code: "access_denied",
            message: format!(
                "{url} refused the request (HTTP 403 {said}): your principal needs {} (lambda:InvokeFunctionUrl, and lambda:InvokeFunction through the URL)",
                duty.policy
            ),
        },
        status => CliError {
            code: "function_error",
            message: format!("{url} answered HTTP {status} {said}: see the duty function's log in CloudWatch"),
        },
    };
    Err(Failed { error, may_have_begun })
}

/// A retention duty: its URL's setting and the operators' policy it needs.
struct Duty {
    policy: &'static str,
}

const HOLD: Duty = Duty { policy: "the hold duty's operators' policy (<stack>-retention-hold-operator)" };
const ERASE: Duty = Duty { policy: "the erase duty's operators' policy (<stack>-retention-erase-operator)" };
const ERASE_PAST_GOVERNANCE: Duty = Duty {
    policy: "the erase-past-governance duty's operators' policy (<stack>-retention-erase-past-governance-operator)",
};

/// `callvault hold set|release TYPE/ID --reason ... --url <RetentionHoldUrl>`.
pub async fn hold(url: String, recording: String, set: bool, reason: String) -> Result<(), CliError> {
    let action = if set { "hold" } else { "release" };
    let answer = request(&url, &HOLD, json!({"action": action, "recording": recording, "reason": reason}))
        .await
        .map_err(|f| f.error)?;
    if set {
        let by = answer["hold"]["by"].as_str().unwrap_or("you");
        println!("{recording}: under legal hold (by {by}: {reason}); retention and erasure leave it alone until `callvault hold release`");
    } else {
        let by = answer["release"]["by"].as_str().unwrap_or("you");
        println!("{recording}: legal hold released by {by} ({reason}); retention deletes it when its time is up");
    }
    Ok(())
}

/// `callvault erase TYPE/ID --reason ... --url <RetentionEraseUrl>`, or
/// with `--bypass-governance-retention`, the erase-past-governance duty's URL.
pub async fn erase(
    url: String,
    recording: String,
    reason: String,
    bypass_governance: bool,
    request_id: Option<String>,
) -> Result<(), CliError> {
    let request_id = match request_id {
        Some(r) => r,
        None => {
            let mut b = [0u8; 8];
            aws_lc_rs::rand::fill(&mut b).map_err(|_| CliError { code: "io", message: "no randomness".into() })?;
            format!("erase-{}", hex::encode(b))
        }
    };
    let body = json!({
        "action": "erase",
        "recording": recording,
        "reason": reason,
        "request_id": request_id,
        "bypass_governance_retention": bypass_governance,
    });
    let duty = if bypass_governance { &ERASE_PAST_GOVERNANCE } else { &ERASE };
    match request(&url, duty, body).await {
        Ok(answer) => {
            let erased = &answer["erased"];
            println!(
                "{recording}: erased ({} versions, {} bytes) at the request of {}; evidence {}",
                erased["versions"].as_array().map_or(0, Vec::len),
                erased["plaintext_bytes"],
                answer["requested_by"].as_str().unwrap_or("you"),
                answer["report"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        Err(Failed { mut error, may_have_begun }) => {
            if may_have_begun {
                error.message =
                    format!("{} (request {request_id}: `--request-id {request_id}` resumes it)", error.message);
            }
            Err(error)
        }
    }
}
