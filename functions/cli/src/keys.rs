//! `callvault keys` and `callvault keys retire`: every key the catalog or
//! the deployment knows, with what it protects; and a retirement that
//! refuses while anything still depends on the key.
//!
//! "Configured" is read from the deployment itself: the settings of the
//! stack's functions (GetFunctionConfiguration: `RECORDING_KEYS` and the
//! guardian's `OLDER_KEY_ARNS`), never from a flag the
//! operator passes. (A move target's keys live in the rekey role's policy
//! only, not in a setting: they are another region's, retired there.)

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vault::aws::{AwsKms, DynamoCatalog};
use vault::ports::catalog::{KeyUsage, KeyUsageCatalog, RecordingListing};
use vault::ports::keys::KeyInspection;
use vault::OperationError;

use crate::aws::Aws;
use crate::CliError;

/// The stack's functions whose settings name keys.
const FUNCTIONS: &[&str] = &["encrypt-recording", "playback", "key-guardian", "rotation-audit", "rekey", "retention"];
/// The settings that name keys: (variable, what it is).
const KEY_SETTINGS: &[(&str, &str)] = &[
    ("RECORDING_KEYS", "RecordingKeyArn (the key new recordings are wrapped under)"),
    ("OLDER_KEY_ARNS", "OlderKeyArns (keys older recordings are still under)"),
];

/// The days KMS waits before it deletes a key (the longest window).
pub const DELETION_WINDOW_DAYS: i32 = 30;

/// Where the deployment names a key: the function, the setting, and the
/// recording types it wraps new recordings of (for `RECORDING_KEYS`).
#[derive(Clone, Debug)]
struct Place {
    function: String,
    setting: String,
    types: Vec<String>,
}

/// Where each key is configured: key ARN -> its places.
type Configured = BTreeMap<String, Vec<Place>>;

/// Adds the keys one function's settings name to `found`. Fails closed: a
/// setting that cannot be read cannot say a key is unused.
fn add_places(
    found: &mut Configured,
    function: &str,
    vars: &std::collections::HashMap<String, String>,
) -> Result<(), CliError> {
    for (setting, _) in KEY_SETTINGS {
        let Some(value) = vars.get(*setting) else { continue };
        let place = |types: Vec<String>| Place { function: function.to_string(), setting: setting.to_string(), types };
        if *setting == "RECORDING_KEYS" {
            let map: BTreeMap<String, Vec<String>> = serde_json::from_str(value).map_err(|e| CliError {
                code: "config_invalid",
                message: format!("{function}'s RECORDING_KEYS is not readable ({e}): fix the function's configuration"),
            })?;
            for (types, keys) in map {
                let types: Vec<String> = types.split(',').map(|t| t.trim().to_string()).collect();
                for key in keys {
                    found.entry(key).or_default().push(place(types.clone()));
                }
            }
        } else {
            for key in value.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                found.entry(key.to_string()).or_default().push(place(vec![]));
            }
        }
    }
    Ok(())
}

/// Reads the keys the stack's functions are configured with.
async fn configured(aws: &Aws, stack: &str) -> Result<Configured, CliError> {
    let mut found = Configured::new();
    let mut seen = 0;
    for f in FUNCTIONS {
        let name = format!("{stack}-{f}");
        let Some(vars) = aws.function_settings(&name).await? else { continue };
        seen += 1;
        add_places(&mut found, &name, &vars)?;
    }
    if seen == 0 {
        return Err(CliError {
            code: "stack_not_found",
            message: format!(
                "no function of stack {stack:?} ({stack}-encrypt-recording, ...) is in this account and region: check --stack (or CALLVAULT_STACK) and AWS_REGION"
            ),
        });
    }
    Ok(found)
}

fn is_same(a: &str, b: &str) -> bool {
    vault::arn::same_key(a, b)
}

/// `callvault keys`: one line (or JSON object) per key.
pub async fn list(stack: String, catalog_table: String, as_json: bool) -> Result<(), CliError> {
    let aws = Aws::from_env().await;
    let catalog = DynamoCatalog::from_config(aws.sdk(), &catalog_table);
    let kms = AwsKms::new(aws.sdk());
    let configured = configured(&aws, &stack).await?;
    let usages = catalog.key_usages().await.map_err(|e| CliError { code: e.code(), message: e.to_string() })?;
    let mut keys: BTreeMap<String, (Option<KeyUsage>, Vec<Place>)> = BTreeMap::new();
    for u in usages {
        let arn = u.key_arn.clone();
        keys.entry(arn).or_default().0 = Some(u);
    }
    for (k, places) in configured {
        keys.entry(k).or_default().1 = places;
    }
    let mut rows = Vec::new();
    for (arn, (usage, places)) in keys {
        let facts = kms.rotation_facts(&arn).await;
        let mut types: Vec<String> = places.iter().flat_map(|p| p.types.clone()).collect();
        types.sort();
        types.dedup();
        rows.push(json!({
            "key_arn": arn,
            "recordings": usage.as_ref().map_or(0, |u| u.recordings),
            "bytes": usage.as_ref().map_or(0, |u| u.bytes),
            // When a recording was first and last wrapped under it (kept
            // after those recordings are deleted or moved).
            "first_used": usage.as_ref().map(|u| u.first_used.clone()),
            "last_used": usage.as_ref().map(|u| u.last_used.clone()),
            "recording_types": usage.as_ref().map(|u| u.recording_types.clone()).unwrap_or_default(),
            "configured_types": types,
            "configured_in": places.iter().map(|p| format!("{} {}", p.function, p.setting)).collect::<Vec<_>>(),
            "state": facts.state.map(|s| format!("{s:?}")),
            "rotation_enabled": facts.rotation_enabled,
            "last_rotated": facts.last_rotation.map(|s| vault::time::rfc3339(s.max(0) as u64)),
        }));
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&Value::from(rows)).unwrap_or_default());
        return Ok(());
    }
    println!("{:<80} {:>10} {:>14}  {:<16} {:<8} configured for", "key", "recordings", "bytes", "state", "rotation");
    for r in &rows {
        let types = |v: &Value| {
            v.as_array().map(|t| t.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(",")).unwrap_or_default()
        };
        let recordings = r["recordings"].as_u64().unwrap_or(0);
        println!(
            "{:<80} {:>10} {:>14}  {:<16} {:<8} {}",
            r["key_arn"].as_str().unwrap_or_default(),
            recordings,
            r["bytes"].as_u64().unwrap_or(0),
            r["state"].as_str().unwrap_or("unknown"),
            match r["rotation_enabled"].as_bool() {
                Some(true) => "on",
                Some(false) => "off",
                None => "n/a",
            },
            match types(&r["configured_types"]) {
                t if t.is_empty() => "-".to_string(),
                t => t,
            },
        );
        if recordings > 0 {
            println!(
                "    recordings of {}; first wrapped under it {}, last {}",
                types(&r["recording_types"]),
                r["first_used"].as_str().unwrap_or("?"),
                r["last_used"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(())
}

/// `callvault keys retire ARN`: refuses while the key protects recordings
/// or the deployment is configured with it; otherwise disables it and
/// schedules its deletion with the 30-day window.
pub async fn retire(stack: String, catalog_table: String, key_arn: String) -> Result<(), CliError> {
    if !vault::arn::KmsArn::parse(&key_arn).is_some_and(|a| a.is_key()) {
        return Err(CliError::usage(format!(
            "{key_arn:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
        )));
    }
    let aws = Aws::from_env().await;
    let catalog = DynamoCatalog::from_config(aws.sdk(), &catalog_table);
    let usages = catalog.key_usages().await.map_err(|e| CliError { code: e.code(), message: e.to_string() })?;
    let protects: Vec<&KeyUsage> =
        usages.iter().filter(|u| is_same(&u.key_arn, &key_arn) && u.recordings > 0).collect();
    if let Some(u) = protects.first() {
        return Err(CliError {
            code: "key_protects_recordings",
            message: format!(
                "{key_arn} still protects {} recordings ({} bytes, types {}, from {} to {}): deleting it would make them noise to everyone. \
                 Move them onto another key first: `callvault rekey --from-key {key_arn} --to-key <new key ARN>` \
                 (or onto each type's configured key: `callvault rekey --from-key {key_arn}`), then run this again",
                u.recordings,
                u.bytes,
                u.recording_types.join(","),
                u.first_used,
                u.last_used
            ),
        });
    }
    // A re-key whose tags were never finished: the catalog names the new
    // version, but the one under this key may still be the only version
    // the lifecycle rules leave alone.
    let unfinished = unfinished_tags(&catalog, &key_arn).await?;
    if let Some((first, since)) = unfinished.first() {
        return Err(CliError {
            code: "key_tags_unfinished",
            message: format!(
                "{key_arn}: {} recordings re-keyed off or onto it have a new version whose tag is not yet confirmed \
                 (first {first}, since {since}): until it is, the version under this key may be the only one kept. \
                 Finish them: rerun `callvault rekey --from-key {key_arn}` (it selects them), or run the tag sweep now \
                 (`aws lambda invoke --function-name {stack}-tag-sweep --cli-binary-format raw-in-base64-out \
                 --payload '{{\"action\": \"sweep-tags\"}}' sweep.json`; it finishes marks older than an hour), \
                 then run this again",
                unfinished.len()
            ),
        });
    }
    let configured = configured(&aws, &stack).await?;
    let mut by_setting: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for place in configured.iter().filter(|(k, _)| is_same(k, &key_arn)).flat_map(|(_, places)| places) {
        by_setting.entry(place.setting.clone()).or_default().push(place.function.clone());
    }
    let uses: Vec<String> = by_setting.iter().map(|(setting, fs)| format!("{setting} of {}", fs.join(", "))).collect();
    if !uses.is_empty() {
        let params: Vec<&str> =
            KEY_SETTINGS.iter().filter(|(s, _)| uses.iter().any(|u| u.contains(s))).map(|(_, p)| *p).collect();
        return Err(CliError {
            code: "key_configured",
            message: format!(
                "{key_arn} is configured in stack {stack}: {}. Remove it from the stack's parameter {} and update the stack \
                 (`sam deploy`), then run this again",
                uses.join(", "),
                params.join(" and ")
            ),
        });
    }
    aws.disable_key(&key_arn).await?;
    let when = aws.schedule_key_deletion(&key_arn, DELETION_WINDOW_DAYS).await?;
    println!(
        "{key_arn}: protects no recording and no function is configured with it; disabled, and scheduled for deletion \
         on {when} ({DELETION_WINDOW_DAYS}-day window). Until then `aws kms cancel-key-deletion --key-id {key_arn}` \
         and `aws kms enable-key` bring it back."
    );
    Ok(())
}

/// The marked rows (tags not yet confirmed) that name `key_arn` as a key
/// they are under or moved off: (recording, since).
async fn unfinished_tags(catalog: &DynamoCatalog, key_arn: &str) -> Result<Vec<(String, String)>, CliError> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = catalog
            .tags_due_page(after, 1000)
            .await
            .map_err(|e| CliError { code: e.code(), message: e.to_string() })?;
        for row in page.iter().filter(|r| r.is_under(key_arn) || r.was_under(key_arn)) {
            let since = row.tags_due.as_ref().and_then(|t| t.since.clone()).unwrap_or_default();
            found.push((row.id.to_string(), since));
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const B: &str = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";

    fn vars(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_setting_that_names_a_key_counts_and_an_unreadable_one_fails_closed() {
        let mut found = Configured::new();
        let keys = format!(r#"{{"calls,screens": ["{A}"]}}"#);
        add_places(&mut found, "s-encrypt-recording", &vars(&[("RECORDING_KEYS", &keys)])).unwrap();
        add_places(&mut found, "s-key-guardian", &vars(&[("OLDER_KEY_ARNS", &format!("{B}, {A}")), ("X", "y")]))
            .unwrap();
        let a = &found[A];
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].function.as_str(), a[0].setting.as_str()), ("s-encrypt-recording", "RECORDING_KEYS"));
        assert_eq!(a[0].types, ["calls", "screens"]);
        assert_eq!((a[1].setting.as_str(), a[1].types.len()), ("OLDER_KEY_ARNS", 0));
        assert_eq!(found[B].len(), 1);
        add_places(&mut found, "s-playback", &vars(&[("OLDER_KEY_ARNS", "")])).unwrap();
        assert_eq!(found.len(), 2, "an empty list names no key");

        let err = add_places(&mut found, "s-rekey", &vars(&[("RECORDING_KEYS", "{not json")])).unwrap_err();
        assert_eq!(err.code, "config_invalid");
        assert!(err.message.contains("s-rekey"), "{}", err.message);
    }
}
