//! `callvault audit`: the rotation audit the rotation-audit Lambda runs,
//! printed as a table (or the report's JSON); exit status 1 when any key is
//! not compliant, so it fits a CI or cron job.

use vault::audit::{run, Policy};
use vault::aws::{AwsKms, DynamoCatalog};
use vault::recording::RecordingKeys;
use vault::time::unix_now;
use vault::OperationError;

use crate::CliError;

/// Runs the audit with the catalog `table`, the `recording_keys` JSON and `org`.
pub async fn audit(
    table: String,
    recording_keys: String,
    org: String,
    max_key_age_days: u64,
    json: bool,
) -> Result<(), CliError> {
    let sdk = aws_config::load_from_env().await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| CliError::usage("set AWS_REGION to the region the functions run in"))?;
    let keys = RecordingKeys::parse_any_region(&recording_keys)
        .map_err(|e| CliError { code: "config_invalid", message: format!("--recording-keys: {e}") })?;
    let report = run(
        &AwsKms::new(&sdk),
        &DynamoCatalog::from_config(&sdk, &table),
        &keys,
        &org,
        &region,
        Policy { max_key_age_days },
        unix_now() as i64,
    )
    .await
    .map_err(|e| CliError { code: e.code(), message: e.to_string() })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json()).unwrap_or_default());
    } else {
        print!("{}", report.table());
    }
    match report.failing().count() {
        0 => Ok(()),
        n => Err(CliError {
            code: "non_compliant",
            message: format!("{n} of {} keys are not compliant (see the reasons above)", report.keys.len()),
        }),
    }
}
