//! `callvault audit`: the rotation audit the rotation-audit Lambda runs,
//! printed as a table (or the report's JSON); exit status 1 when any key is
//! not compliant, so it fits a CI or cron job.

use vault::audit::{run, Policy, DEFAULT_MAX_KEY_AGE_DAYS};
use vault::aws::{AwsKms, DynamoCatalog};
use vault::recording::RecordingKeys;
use vault::time::unix_now;
use vault::OperationError;

use crate::aws::Aws;
use crate::commands::Problems;
use crate::CliError;

/// What the command line (or its environment) gave; the rest is read from
/// the stack.
pub struct Given {
    pub stack: Option<String>,
    pub catalog_table: Option<String>,
    pub recording_keys: Option<String>,
    pub org: Option<String>,
    pub max_key_age_days: Option<u64>,
}

/// The function whose settings the audit takes from a stack: the one that
/// runs the same audit every day.
const FUNCTION: &str = "rotation-audit";

/// Runs the audit as the stack's rotation-audit function would, with any
/// setting the command line gives in place of the function's.
pub async fn audit(given: Given, json: bool) -> Result<(), CliError> {
    let aws = Aws::from_env().await;
    let sdk = aws.sdk();
    let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| CliError {
        code: "config",
        message: "no AWS region: set AWS_REGION to the region the functions run in".into(),
    })?;
    let mut settings = std::collections::HashMap::new();
    if let Some(stack) = &given.stack {
        let name = format!("{stack}-{FUNCTION}");
        settings = aws.function_settings(&name).await?.ok_or_else(|| CliError {
            code: "stack_not_found",
            message: format!(
                "there is no function {name} in this account and region: check --stack (or CALLVAULT_STACK) and \
                 AWS_REGION"
            ),
        })?;
    }
    let mut problems = Problems::default();
    let mut setting = |given: Option<String>, name: &str, flag: &str| {
        let value = given.or_else(|| settings.get(name).cloned());
        if value.is_none() {
            problems.push(CliError::usage(format!("no {flag}: give it, or --stack to read {name} from the stack")));
        }
        value.unwrap_or_default()
    };
    let table = setting(given.catalog_table, "CATALOG_TABLE", "--catalog-table");
    let recording_keys = setting(given.recording_keys, "RECORDING_KEYS", "--recording-keys");
    let org = setting(given.org, "CALLVAULT_ORG", "--org");
    let max_key_age_days = given
        .max_key_age_days
        .or_else(|| settings.get("MAX_KEY_AGE_DAYS").and_then(|d| d.parse().ok()))
        .unwrap_or(DEFAULT_MAX_KEY_AGE_DAYS);
    problems.finish()?;
    let keys = RecordingKeys::parse_any_region(&recording_keys).map_err(|e| CliError {
        code: "config_invalid",
        message: format!("RECORDING_KEYS is not readable: {e}: give JSON such as {{\"calls\": [\"<key ARN>\"]}}"),
    })?;
    let report = run(
        &AwsKms::new(sdk),
        &DynamoCatalog::from_config(sdk, &table),
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
