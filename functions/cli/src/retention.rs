//! `callvault hold set|release` and `callvault erase`: requests to the
//! stack's retention function, which alone may delete recordings and
//! write their evidence (template.yaml): the operator needs only
//! `lambda:InvokeFunction` on it (RetentionOperatorPolicy).

use serde_json::{json, Value};

use crate::aws::Aws;
use crate::CliError;

/// Invokes the retention function; its answer, or its refusal as the error.
async fn invoke(aws: &Aws, function: &str, request: Value) -> Result<Value, CliError> {
    let out = match aws.invoke(function, request.to_string()).await {
        Ok(out) => out,
        Err(failed) => {
            // A function error some Invoke endpoints (cargo lambda's) answer
            // as an HTTP error rather than Lambda's 200 with X-Amz-Function-Error.
            if let Some(code) = failed.body.as_ref().and_then(|b| b["errorType"].as_str()) {
                return Err(function_error(code, failed.body.as_ref().and_then(|b| b["errorMessage"].as_str())));
            }
            return Err(failed.error);
        }
    };
    if let Some(kind) = &out.function_error {
        return Err(function_error(
            out.payload["errorType"].as_str().unwrap_or(kind),
            out.payload["errorMessage"].as_str(),
        ));
    }
    Ok(out.payload)
}

/// The function's refusal as the command's error: its stable code (one
/// of the codes the retention function answers; any other is `function_error`).
fn function_error(code: &str, message: Option<&str>) -> CliError {
    const CODES: &[&str] = &[
        "not_found",
        "legal_hold",
        "compliance_retention",
        "governance_retention",
        "in_progress",
        "moved",
        "deleting",
        "not_held",
        "bad_request",
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
    let message = message.unwrap_or("the function failed").to_string();
    match CODES.iter().find(|c| **c == code) {
        Some(c) => CliError { code: c, message },
        None => CliError { code: "function_error", message: format!("{code}: {message}") },
    }
}

/// `callvault hold set|release TYPE/ID --reason ...`.
pub async fn hold(function: String, recording: String, set: bool, reason: String) -> Result<(), CliError> {
    let aws = Aws::from_env().await;
    let by = aws.caller_arn().await?;
    let action = if set { "hold" } else { "release" };
    let answer = invoke(
        &aws,
        &function,
        json!({"action": action, "recording": recording, "reason": reason, "requested_by": by}),
    )
    .await?;
    if set {
        println!("{recording}: under legal hold (by {by}: {reason}); retention and erasure leave it alone until `callvault hold release`");
    } else {
        println!("{recording}: legal hold released ({reason}); retention deletes it when its time is up");
    }
    let _ = answer;
    Ok(())
}

/// `callvault erase TYPE/ID --reason ...`.
pub async fn erase(
    function: String,
    recording: String,
    reason: String,
    bypass_governance: bool,
    request_id: Option<String>,
) -> Result<(), CliError> {
    let aws = Aws::from_env().await;
    let by = aws.caller_arn().await?;
    let request_id = match request_id {
        Some(r) => r,
        None => {
            let mut b = [0u8; 8];
            aws_lc_rs::rand::fill(&mut b).map_err(|_| CliError { code: "io", message: "no randomness".into() })?;
            format!("erase-{}", hex::encode(b))
        }
    };
    let request = json!({
        "action": "erase",
        "recording": recording,
        "reason": reason,
        "requested_by": by,
        "request_id": request_id,
        "bypass_governance_retention": bypass_governance,
    });
    match invoke(&aws, &function, request).await {
        Ok(answer) => {
            let erased = &answer["erased"];
            println!(
                "{recording}: erased ({} versions, {} bytes); evidence {}",
                erased["versions"].as_array().map_or(0, Vec::len),
                erased["plaintext_bytes"],
                answer["report"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        Err(mut e) => {
            e.message = format!("{} (request {request_id}: `--request-id {request_id}` resumes it)", e.message);
            Err(e)
        }
    }
}
