//! Least privilege, checked from the code to the template:
//!
//! 1. every AWS SDK operation an adapter's source calls is in the list of IAM
//!    actions kept next to it, and every listed action is one of its calls;
//! 2. each function's list of calls (`<crate>::AWS_CALLS`) is drawn from its
//!    adapters' lists;
//! 3. each function's statements in `template.yaml` grant exactly its list:
//!    a new call without a permission, or a permission without a call, fails;
//! 4. KMS grants name the configured keys, carry the `org` encryption context
//!    condition, and encrypt-recording cannot decrypt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn set(items: &[&[&str]]) -> BTreeSet<String> {
    items.iter().flat_map(|l| l.iter().map(|s| s.to_string())).collect()
}

// ------------------------------------------------------------------ the code

/// The SDK crates the functions use: crate name, IAM service prefix.
const SERVICES: &[(&str, &str)] = &[
    ("aws-sdk-kms", "kms"),
    ("aws-sdk-s3", "s3"),
    ("aws-sdk-dynamodb", "dynamodb"),
    ("aws-sdk-sns", "sns"),
    ("aws-sdk-sqs", "sqs"),
    ("aws-sdk-secretsmanager", "secretsmanager"),
];

/// The operations of an SDK crate: the directories under its
/// `src/operation/`, in the registry source cargo unpacked for this build.
fn operations(krate: &str) -> BTreeSet<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains(&format!("name = \"{krate}\"\n")))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"').map(str::to_string)))
        .unwrap_or_else(|| panic!("{krate} is not in Cargo.lock"));
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo"));
    let registries = std::fs::read_dir(home.join("registry/src")).expect("cargo's registry sources");
    for registry in registries.flatten() {
        let dir = registry.path().join(format!("{krate}-{version}/src/operation"));
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let ops: BTreeSet<String> = entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert!(!ops.is_empty(), "no operations under {}", dir.display());
            return ops;
        }
    }
    panic!("the source of {krate} {version} is not under {}/registry/src", home.display());
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// An operation's IAM actions: (required, also allowed). Required is what a
/// call needs; allowed adds the variants a call can need depending on its
/// arguments (a version id, the items of a transaction).
fn iam_actions(service: &str, op: &str) -> (Vec<String>, Vec<String>) {
    let a = |names: &[&str]| names.iter().map(|n| format!("{service}:{n}")).collect::<Vec<_>>();
    match (service, op) {
        // ListBucket turns S3's 403 for a missing key into a 404.
        ("s3", "get_object" | "head_object") => (a(&["GetObject"]), a(&["GetObjectVersion", "ListBucket"])),
        ("s3", "delete_object") => (a(&["DeleteObject"]), a(&["DeleteObjectVersion", "BypassGovernanceRetention"])),
        ("s3", "get_object_tagging") => (a(&["GetObjectTagging"]), a(&["GetObjectVersionTagging"])),
        ("s3", "put_object_tagging") => (a(&["PutObjectTagging"]), a(&["PutObjectVersionTagging"])),
        // An object born under Object Lock: its retention date and legal hold.
        ("s3", "put_object" | "create_multipart_upload" | "upload_part" | "complete_multipart_upload") => {
            (a(&["PutObject"]), a(&["PutObjectRetention", "PutObjectLegalHold"]))
        }
        ("s3", "list_objects_v2" | "list_objects") => (a(&["ListBucket"]), vec![]),
        ("s3", "list_object_versions") => (a(&["ListBucketVersions"]), vec![]),
        // IAM authorises a transaction by its items' actions.
        ("dynamodb", "transact_write_items") => {
            (vec![], a(&["PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"]))
        }
        _ => (a(&[&pascal(op)]), vec![]),
    }
}

/// Whether `code` calls `.op()` (whitespace and line breaks allowed, as
/// rustfmt splits fluent chains): the SDK's fluent builders take no
/// arguments, so a method of ours with the same name and arguments is not one.
fn calls_op(code: &str, op: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(op).any(|(at, _)| {
        let before = code[..at].trim_end();
        let after = &code[at + op.len()..];
        before.ends_with('.')
            && !after.starts_with(is_ident)
            && after.trim_start().strip_prefix('(').is_some_and(|rest| rest.trim_start().starts_with(')'))
    })
}

/// The production part of a source file: up to its `#[cfg(test)] mod`.
fn production(source: &str) -> &str {
    let mut at = 0;
    while let Some(found) = source[at..].find("#[cfg(test)]") {
        let start = at + found;
        if source[start + "#[cfg(test)]".len()..].trim_start().starts_with("mod ") {
            return &source[..start];
        }
        at = start + 1;
    }
    source
}

/// The SDK operations a source file calls, of every SDK the functions use;
/// and the SDK crates it names that are not among them.
fn calls_in(source: &str) -> (BTreeMap<&'static str, BTreeSet<String>>, Vec<String>) {
    let code = production(source);
    let mut found = BTreeMap::new();
    for (krate, service) in SERVICES {
        let ops: BTreeSet<String> = operations(krate).into_iter().filter(|op| calls_op(code, op)).collect();
        if !ops.is_empty() {
            found.insert(*service, ops);
        }
    }
    let unknown = code
        .match_indices("aws_sdk_")
        .map(|(at, _)| code[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
        .filter(|name| !SERVICES.iter().any(|(krate, _)| krate.replace('-', "_") == *name))
        .collect();
    (found, unknown)
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The adapters: each file or folder that calls AWS, and the list kept with
/// it (a folder's files share their adapter's list).
fn adapters() -> Vec<(&'static str, BTreeSet<String>)> {
    use vault::aws::{alerts, catalog, dead_letters, keys, objects};
    vec![
        ("functions/vault/src/aws/keys.rs", set(&[keys::AWS_CALLS, keys::ADMIN_AWS_CALLS, keys::AUDIT_AWS_CALLS])),
        ("functions/vault/src/aws/catalog", set(&[catalog::AWS_CALLS])),
        ("functions/vault/src/aws/objects", set(objects::AWS_CALLS)),
        ("functions/vault/src/aws/alerts.rs", set(&[alerts::AWS_CALLS])),
        ("functions/vault/src/aws/dead_letters.rs", set(&[dead_letters::AWS_CALLS])),
        ("functions/playback/src/aws.rs", set(&[playback::aws::AWS_CALLS])),
    ]
}

/// An adapter's calls: the IAM actions they need, those they may also use,
/// and the calls themselves (`file: service:Operation`).
type AdapterCalls = (BTreeSet<String>, BTreeSet<String>, Vec<String>);

#[test]
fn each_adapter_lists_exactly_the_calls_its_code_makes() {
    let listed: BTreeMap<&str, BTreeSet<String>> = adapters().into_iter().collect();
    let mut found: BTreeMap<&str, AdapterCalls> = BTreeMap::new();
    for krate in ["vault", "encrypt-recording", "playback", "key-guardian", "rotation-audit"] {
        let mut files = Vec::new();
        sources(&root().join("functions").join(krate).join("src"), &mut files);
        for path in files {
            let rel = path.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
            let (calls, unknown) = calls_in(&std::fs::read_to_string(&path).unwrap());
            assert!(
                unknown.is_empty(),
                "{rel} uses {unknown:?}: add the SDK to SERVICES in tests/tests/iam.rs so its calls are checked"
            );
            if calls.is_empty() {
                continue;
            }
            let adapter = listed
                .keys()
                .find(|a| rel == **a || rel.starts_with(&format!("{a}/")))
                .unwrap_or_else(|| {
                    panic!("{rel} calls AWS ({calls:?}) but keeps no list of its IAM actions; add one and name it in tests/tests/iam.rs")
                });
            let (required, allowed, seen) = found.entry(adapter).or_default();
            for (service, ops) in &calls {
                for op in ops {
                    let (req, also) = iam_actions(service, op);
                    allowed.extend(req.iter().cloned().chain(also));
                    required.extend(req);
                    seen.push(format!("{rel}: {service}:{op}"));
                }
            }
        }
    }
    for (adapter, list) in &listed {
        let (required, allowed, calls) =
            found.get(adapter).unwrap_or_else(|| panic!("{adapter} is named as an adapter but calls no AWS"));
        let unlisted: Vec<_> = required.difference(list).collect();
        assert!(unlisted.is_empty(), "{adapter} makes calls its list lacks: {unlisted:?} (calls: {calls:?})");
        let uncalled: Vec<_> = list.difference(allowed).collect();
        assert!(
            uncalled.is_empty(),
            "{adapter} lists actions none of its calls needs: {uncalled:?} (calls: {calls:?})"
        );
    }
    assert_eq!(found.len(), listed.len(), "every adapter named above calls AWS");
}

// ------------------------------------------------------------------ the template

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

/// A statement and the condition it is granted under (`None`: always).
struct Statement {
    sid: String,
    actions: Vec<String>,
    resource: Value,
    condition: Value,
    granted_if: Option<String>,
}

fn tag_is(v: &Value, name: &str) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == name)
}

/// The role a function runs as: the resource its `Role: !GetAtt <X>.Arn` names.
fn role_of<'a>(template: &'a Value, function: &str) -> (&'a str, &'a Value) {
    let role = &template["Resources"][function]["Properties"]["Role"];
    assert!(tag_is(role, "GetAtt"), "{function}: Role is not !GetAtt <role>.Arn: {role:?}");
    let Value::Tagged(t) = role else { unreachable!() };
    let name = t.value.as_str().and_then(|s| s.strip_suffix(".Arn")).expect("!GetAtt <role>.Arn");
    let resource = &template["Resources"][name];
    assert_eq!(resource["Type"].as_str(), Some("AWS::IAM::Role"), "{function}'s role {name}");
    (name, resource)
}

/// A role's inline policy by name.
fn policy<'a>(role: &'a Value, name: &str) -> Option<&'a Value> {
    role["Properties"]["Policies"]
        .as_sequence()
        .expect("the role's Policies")
        .iter()
        .find(|p| p["PolicyName"].as_str() == Some(name))
}

/// The Allow statements of a policy document, looking into `!If` (both
/// branches) and skipping `!Ref AWS::NoValue`.
fn statements(policy: &Value) -> Vec<Statement> {
    fn walk(v: &Value, granted_if: Option<String>, out: &mut Vec<Statement>) {
        match v {
            Value::Tagged(t) if t.tag == "If" => {
                let parts = t.value.as_sequence().expect("!If [condition, then, else]");
                let cond = parts[0].as_str().expect("condition name").to_string();
                walk(&parts[1], Some(cond.clone()), out);
                walk(&parts[2], Some(format!("!{cond}")), out);
            }
            Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("AWS::NoValue") => {}
            Value::Mapping(m) => {
                if m.get("Effect").and_then(Value::as_str) != Some("Allow") {
                    return;
                }
                let actions = match m.get("Action").expect("Action") {
                    Value::String(s) => vec![s.clone()],
                    Value::Sequence(s) => s.iter().map(|a| a.as_str().expect("action").to_string()).collect(),
                    other => panic!("unexpected Action {other:?}"),
                };
                out.push(Statement {
                    sid: m.get("Sid").and_then(Value::as_str).unwrap_or("").to_string(),
                    actions,
                    resource: m.get("Resource").cloned().unwrap_or(Value::Null),
                    condition: m.get("Condition").cloned().unwrap_or(Value::Null),
                    granted_if,
                });
            }
            other => panic!("unexpected statement {other:?}"),
        }
    }
    let mut out = Vec::new();
    for st in policy["PolicyDocument"]["Statement"].as_sequence().expect("Statement list") {
        walk(st, None, &mut out);
    }
    out
}

/// What a function's code is granted: its role's `code-calls` policy.
fn code_statements(template: &Value, function: &str) -> Vec<Statement> {
    let (name, role) = role_of(template, function);
    statements(policy(role, "code-calls").unwrap_or_else(|| panic!("{name} has no code-calls policy")))
}

/// template.yaml's functions and the crates that are their code.
fn functions() -> Vec<(&'static str, &'static [&'static [&'static str]])> {
    vec![
        ("EncryptRecording", encrypt_recording::AWS_CALLS),
        ("Playback", playback::AWS_CALLS),
        ("KeyGuardian", key_guardian::AWS_CALLS),
        ("RotationAudit", rotation_audit::AWS_CALLS),
        ("Rekey", rekey::AWS_CALLS),
        ("Retention", retention::AWS_CALLS),
        ("RetentionHold", retention::HOLD_AWS_CALLS),
        ("RetentionErase", retention::ERASE_AWS_CALLS),
        ("RetentionErasePastGovernance", retention::ERASE_PAST_GOVERNANCE_AWS_CALLS),
        ("TagSweep", rekey::SWEEP_AWS_CALLS),
    ]
}

#[test]
fn each_function_role_grants_exactly_the_calls_its_code_makes() {
    let template = template();
    let adapters: BTreeSet<String> = adapters().into_iter().flat_map(|(_, l)| l).collect();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let in_template: BTreeSet<&str> = resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    let known: BTreeSet<&str> = functions().iter().map(|(n, _)| *n).collect();
    assert_eq!(in_template, known, "every function in template.yaml has its crate's AWS_CALLS here");

    for (name, calls) in functions() {
        let code = set(calls);
        let invented: Vec<_> = code.difference(&adapters).collect();
        assert!(invented.is_empty(), "{name}'s AWS_CALLS names actions no adapter lists: {invented:?}");
        let granted: BTreeSet<String> = code_statements(&template, name).into_iter().flat_map(|s| s.actions).collect();
        let missing: Vec<_> = code.difference(&granted).collect();
        assert!(missing.is_empty(), "{name} makes calls its role in template.yaml does not grant: {missing:?}");
        let extra: Vec<_> = granted.difference(&code).collect();
        assert!(extra.is_empty(), "{name}'s role in template.yaml grants actions its code never calls: {extra:?}");
    }
}

/// Whether a Resource names the configured keys and nothing else: `!Ref
/// RecordingKeyArn`, or the keys' list (`!Split` of `!Sub` over
/// RecordingKeyArn and OlderKeyArns), in every branch of an `!If`.
fn names_only_the_keys(resource: &Value) -> bool {
    match resource {
        Value::Sequence(items) => !items.is_empty() && items.iter().all(names_only_the_keys),
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str() == Some("RecordingKeyArn"),
        Value::Tagged(t) if t.tag == "If" => {
            let parts = t.value.as_sequence().expect("!If [condition, then, else]");
            names_only_the_keys(&parts[1]) && names_only_the_keys(&parts[2])
        }
        Value::Tagged(t) if t.tag == "Split" => {
            let parts = t.value.as_sequence().expect("!Split [delimiter, string]");
            match &parts[1] {
                Value::Tagged(sub) if sub.tag == "Sub" => {
                    sub.value.as_str() == Some("${RecordingKeyArn},${OlderKeyArns}") && parts[0].as_str() == Some(",")
                }
                _ => false,
            }
        }
        _ => false,
    }
}

#[test]
fn kms_grants_name_the_keys_and_the_org_and_encrypt_recording_cannot_decrypt() {
    let template = template();
    for (name, _) in functions() {
        for st in code_statements(&template, name) {
            let kms: Vec<&String> = st.actions.iter().filter(|a| a.starts_with("kms:")).collect();
            if kms.is_empty() {
                continue;
            }
            let at = format!("{name} statement {:?}", st.sid);
            assert!(kms.len() == st.actions.len(), "{at}: KMS actions share a statement with others: {:?}", st.actions);
            if st.resource.as_str() == Some("*") {
                // ListAliases has no key to name.
                assert_eq!(kms, ["kms:ListAliases"], "{at}: KMS grants name the configured keys, not *");
            } else if mentions(&st.resource, "MoveTargetKeyArns") {
                // The keys of the region a re-key moves recordings into: only
                // the rekey function's, only when configured, never Decrypt.
                assert_eq!(name, "Rekey", "{at}");
                assert_eq!(st.granted_if.as_deref(), Some("HasMoveTargetKeys"), "{at}");
                assert!(!kms.iter().any(|a| *a == "kms:Decrypt"), "{at}: wrapping only");
            } else {
                assert!(
                    names_only_the_keys(&st.resource),
                    "{at}: the resource is not the configured keys: {:?}",
                    st.resource
                );
            }
            let crypto =
                kms.iter().any(|a| matches!(a.as_str(), "kms:GenerateDataKey" | "kms:Encrypt" | "kms:Decrypt"));
            if crypto {
                let cond = &st.condition["StringEquals"];
                let org = &cond["kms:EncryptionContext:org"];
                let rsa_decrypt = kms == ["kms:Decrypt"]
                    && cond["kms:EncryptionAlgorithm"].as_str() == Some("RSAES_OAEP_SHA_256")
                    && st.granted_if.as_deref() == Some("RsaKeys");
                assert!(
                    (tag_is(org, "Ref") && format!("{org:?}").contains("Org")) || rsa_decrypt,
                    "{at}: {kms:?} must be conditioned on kms:EncryptionContext:org = !Ref Org (got {:?})",
                    st.condition
                );
            }
            if name == "EncryptRecording" {
                assert!(
                    !kms.iter().any(|a| *a == "kms:Decrypt"),
                    "{at}: encrypt-recording must not be able to decrypt"
                );
            }
            if kms.iter().any(|a| *a == "kms:CancelKeyDeletion") {
                assert_eq!(st.granted_if.as_deref(), Some("ProtectKeys"), "{at}: only with PROTECT_KEYS_IN_USE");
            }
        }
    }
}

#[test]
fn roles_hold_nothing_but_the_code_calls_logs_and_lambda_destinations() {
    let template = template();
    for (function, _) in functions() {
        let (name, role) = role_of(&template, function);
        let managed: Vec<String> = role["Properties"]["ManagedPolicyArns"]
            .as_sequence()
            .map(|l| l.iter().map(|v| format!("{v:?}")).collect())
            .unwrap_or_default();
        assert!(
            managed.len() == 1 && managed[0].contains("service-role/AWSLambdaBasicExecutionRole"),
            "{name}: the only managed policy is Lambda's basic execution (logs): {managed:?}"
        );
        let policies: Vec<&str> = role["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["PolicyName"].as_str().expect("PolicyName"))
            .collect();
        let asynchronous = template["Resources"][function]["Properties"]["EventInvokeConfig"].is_mapping();
        let expected: &[&str] = if asynchronous { &["code-calls", "lambda-destinations"] } else { &["code-calls"] };
        assert_eq!(policies, expected, "{name}'s inline policies");
        if asynchronous {
            // Lambda itself sends failed invocations to the on-failure queue
            // with the function's role: that, and only that.
            let st = statements(policy(role, "lambda-destinations").unwrap());
            assert_eq!(st.len(), 1, "{name}: lambda-destinations");
            assert_eq!(st[0].actions, ["sqs:SendMessage"], "{name}: lambda-destinations");
            let destination = &template["Resources"][function]["Properties"]["EventInvokeConfig"]["DestinationConfig"]
                ["OnFailure"]["Destination"];
            assert_eq!(st[0].resource, *destination, "{name}: lambda-destinations names the on-failure queue");
        }
    }
}

// ------------------------------------------------------------------ what a role cannot do

/// Whether a Resource names a resource of the template (`!GetAtt`, `!Sub
/// "${X.Arn}..."`, `!Ref`), in any branch.
fn mentions(resource: &Value, logical: &str) -> bool {
    format!("{resource:?}").contains(logical)
}

/// S3 actions that destroy, hide or unlock what a bucket holds.
/// The lock a new object is born with (a vault with Object Lock): a
/// retention date, which without s3:BypassGovernanceRetention can only be
/// set or extended, never shortened; a legal hold that can only be set ON.
/// Both in a statement of their own, so that the writers hold nothing else
/// of the lock.
fn lock_on_write(st: &Statement, action: &str) -> bool {
    match action {
        "s3:PutObjectRetention" => {
            st.actions == ["s3:PutObjectRetention"]
                && tag_is(&st.condition["StringEquals"]["s3:object-lock-mode"], "Ref")
        }
        "s3:PutObjectLegalHold" => {
            st.actions == ["s3:PutObjectLegalHold"]
                && st.condition["StringEquals"]["s3:object-lock-legal-hold"].as_str() == Some("ON")
        }
        _ => false,
    }
}

const DESTRUCTIVE_S3: &[&str] = &[
    "s3:*",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteBucket",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention",
    "s3:RestoreObject",
];

#[test]
fn encrypt_recording_cannot_destroy_a_catalogued_recording_or_touch_evidence() {
    let template = template();
    let statements = code_statements(&template, "EncryptRecording");
    let on_vault: Vec<&Statement> = statements.iter().filter(|s| mentions(&s.resource, "VaultBucket")).collect();
    assert!(!on_vault.is_empty(), "encrypt-recording writes the vault");
    for st in &on_vault {
        let at = format!("EncryptRecording statement {:?}", st.sid);
        let destructive: Vec<&String> =
            st.actions.iter().filter(|a| DESTRUCTIVE_S3.contains(&a.as_str()) && !lock_on_write(st, a)).collect();
        assert!(destructive.is_empty(), "{at}: may destroy vault objects: {destructive:?}");
        for action in &st.actions {
            let cond = &st.condition;
            match action.as_str() {
                // New versions only (the vault is versioned: a PUT never
                // replaces a version), born pending when tagged at all.
                "s3:PutObject" => assert_eq!(
                    cond["StringEqualsIfExists"]["s3:RequestObjectTag/callvault-state"].as_str(),
                    Some("pending"),
                    "{at}: a new vault object may only be born pending"
                ),
                // Only pending, and never an object already catalogued.
                "s3:PutObjectTagging" => {
                    assert_eq!(
                        cond["StringEquals"]["s3:RequestObjectTag/callvault-state"].as_str(),
                        Some("pending"),
                        "{at}"
                    );
                    assert_eq!(
                        cond["StringEqualsIfExists"]["s3:ExistingObjectTag/callvault-state"].as_str(),
                        Some("pending"),
                        "{at}"
                    );
                }
                // pending -> catalogued, never back: a catalogued version can
                // never come within the lifecycle rule's reach.
                "s3:PutObjectVersionTagging" => {
                    assert_eq!(
                        cond["StringEquals"]["s3:ExistingObjectTag/callvault-state"].as_str(),
                        Some("pending"),
                        "{at}"
                    );
                    assert_eq!(
                        cond["StringEquals"]["s3:RequestObjectTag/callvault-state"].as_str(),
                        Some("catalogued"),
                        "{at}"
                    );
                }
                "s3:AbortMultipartUpload" | "s3:GetObject" | "s3:GetObjectVersion" | "s3:GetObjectVersionTagging" => {}
                a if lock_on_write(st, a) => {}
                other => panic!("{at}: {other} on the vault is not accounted for here"),
            }
        }
    }
    // The evidence older versions wrote into the vault is out of reach.
    let (_, role) = role_of(&template, "EncryptRecording");
    let all = policy(role, "code-calls").unwrap()["PolicyDocument"]["Statement"].as_sequence().unwrap().clone();
    let old_evidence = all
        .iter()
        .find(|s| s["Effect"].as_str() == Some("Deny") && format!("{:?}", s["Resource"]).contains("/audit/*"))
        .expect("a Deny on the vault's audit/ prefix");
    let denied: Vec<&str> = old_evidence["Action"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for a in ["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"] {
        assert!(denied.contains(&a), "{a} on the old evidence");
    }
    for st in &statements {
        assert!(!mentions(&st.resource, "EvidenceBucket"), "EvidenceBucket in {:?}", st.sid);
        assert_ne!(st.resource.as_str(), Some("*"), "{:?}: encrypt-recording names its resources", st.sid);
    }
    // What the lifecycle rules remove is exactly what is still pending (never
    // catalogued) or superseded by a re-key, after the grace period: a
    // superseded version that is current (an orphan newer than the
    // catalogued one) first gets a delete marker over it, then goes as a
    // noncurrent version. The catalogued version is never tagged superseded.
    let rules = template["Resources"]["VaultBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .expect("the vault's lifecycle rules");
    let expiring: Vec<&Value> = rules
        .iter()
        .filter(|r| r.get("ExpirationInDays").is_some() || r.get("NoncurrentVersionExpiration").is_some())
        .collect();
    let mut states = Vec::new();
    for rule in &expiring {
        let filters = rule["TagFilters"].as_sequence().expect("an expiring rule filters by tag");
        assert_eq!(filters.len(), 1);
        assert_eq!(filters[0]["Key"].as_str(), Some("callvault-state"));
        assert!(rule.get("Prefix").is_none() && rule.get("Filter").is_none());
        let state = filters[0]["Value"].as_str().unwrap();
        match state {
            "superseded" => {
                assert!(tag_is(&rule["ExpirationInDays"], "Ref"), "a current orphan: after the grace period");
                assert!(
                    tag_is(&rule["NoncurrentVersionExpiration"]["NoncurrentDays"], "Ref"),
                    "after the grace period"
                );
            }
            // Catalogued in another region first; the row here says where.
            "moved" => assert!(tag_is(&rule["ExpirationInDays"], "Ref"), "after the grace period"),
            _ => {}
        }
        states.push(state);
    }
    states.sort();
    assert_eq!(states, ["moved", "pending", "superseded"], "only uncatalogued, superseded and moved versions expire");
}

#[test]
fn rekey_cannot_destroy_a_version_or_bring_one_back_and_its_batch_role_only_runs_rekey_jobs() {
    let template = template();
    let granted = code_statements(&template, "Rekey");
    for st in &granted {
        let at = format!("Rekey statement {:?}", st.sid);
        assert_ne!(st.resource.as_str(), Some("*"), "{at}: names its resources");
        for bucket in ["EvidenceBucket", "IngestBucket", "-ingest-"] {
            assert!(!mentions(&st.resource, bucket), "{at} reaches {bucket}");
        }
        // The other region's vault and catalog only when configured.
        if mentions(&st.resource, "MoveTarget") {
            assert_eq!(st.granted_if.as_deref().map(|c| c.starts_with("HasMoveTarget")), Some(true), "{at}");
        }
        let destructive: Vec<&String> =
            st.actions.iter().filter(|a| DESTRUCTIVE_S3.contains(&a.as_str()) && !lock_on_write(st, a)).collect();
        assert!(destructive.is_empty(), "{at}: may destroy vault objects: {destructive:?}");
        let cond = &st.condition;
        for action in &st.actions {
            match action.as_str() {
                "s3:PutObject" => assert_eq!(
                    cond["StringEqualsIfExists"]["s3:RequestObjectTag/callvault-state"].as_str(),
                    Some("pending"),
                    "{at}: a new version is born pending"
                ),
                "s3:PutObjectVersionTagging" => {
                    let to = cond["StringEquals"]["s3:RequestObjectTag/callvault-state"].as_str();
                    let from: Vec<&str> = match &cond["StringEquals"]["s3:ExistingObjectTag/callvault-state"] {
                        Value::String(one) => vec![one.as_str()],
                        Value::Sequence(many) => many.iter().map(|v| v.as_str().unwrap()).collect(),
                        other => panic!("{at}: no existing-tag condition: {other:?}"),
                    };
                    match to {
                        Some("catalogued") => assert_eq!(from, ["pending"], "{at}"),
                        Some("superseded") | Some("moved") => assert_eq!(from, ["pending", "catalogued"], "{at}"),
                        other => panic!("{at}: tags a version {other:?}"),
                    }
                }
                "s3:GetObject"
                | "s3:GetObjectVersion"
                | "s3:GetObjectVersionTagging"
                | "s3:ListBucketVersions"
                | "s3:AbortMultipartUpload" => {}
                a if a.starts_with("dynamodb:") || a.starts_with("kms:") => {}
                a if lock_on_write(st, a) => {}
                other => panic!("{at}: {other} is not accounted for here"),
            }
        }
    }
    // Nothing brings a superseded version back: no statement lets it be tagged
    // out of superseded, and the audit and job prefixes are denied outright.
    let (_, role) = role_of(&template, "Rekey");
    let all = policy(role, "code-calls").unwrap()["PolicyDocument"]["Statement"].as_sequence().unwrap().clone();
    let deny = all.iter().find(|s| s["Effect"].as_str() == Some("Deny")).expect("a Deny");
    let denied = format!("{:?}", deny["Resource"]);
    assert!(denied.contains("/audit/*") && denied.contains("/rekey/*"), "{denied}");

    // The batch role: assumed by S3 Batch Operations of this account only,
    // invokes the rekey function only, and reads and writes only rekey/.
    let batch = &template["Resources"]["RekeyBatchRole"]["Properties"];
    let trust = &batch["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"]["Service"].as_str(), Some("batchoperations.s3.amazonaws.com"));
    assert!(tag_is(&trust["Condition"]["StringEquals"]["aws:SourceAccount"], "Ref"));
    assert!(batch["ManagedPolicyArns"].is_null(), "no managed policy");
    let policies = batch["Policies"].as_sequence().unwrap();
    assert_eq!(policies.len(), 1);
    for st in statements(&policies[0]) {
        let at = format!("RekeyBatchRole statement {:?}", st.sid);
        for action in &st.actions {
            match action.as_str() {
                "lambda:InvokeFunction" => {
                    assert!(mentions(&st.resource, "Rekey.Arn") && !mentions(&st.resource, "Playback"), "{at}")
                }
                "s3:GetObject" | "s3:GetObjectVersion" | "s3:PutObject" => {
                    assert!(
                        format!("{:?}", st.resource).contains("${VaultBucket.Arn}/rekey/*"),
                        "{at}: {:?}",
                        st.resource
                    )
                }
                "s3:GetBucketLocation" => assert!(mentions(&st.resource, "VaultBucket"), "{at}"),
                other => panic!("{at}: {other}"),
            }
        }
    }
    // The operator passes that role to Batch Operations and to nothing else.
    let operator = template["Resources"]["RekeyOperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"].clone();
    let pass = statements_of(&operator).into_iter().find(|s| s.actions == ["iam:PassRole"]).expect("PassRole");
    assert!(mentions(&pass.resource, "RekeyBatchRole"));
    assert_eq!(
        pass.condition["StringEquals"]["iam:PassedToService"].as_str(),
        Some("batchoperations.s3.amazonaws.com")
    );
}

/// The statements of a bare statement list (a managed policy's document).
fn statements_of(list: &Value) -> Vec<Statement> {
    let mut document = serde_yaml_ng::Mapping::new();
    document.insert(Value::from("Statement"), list.clone());
    let mut policy = serde_yaml_ng::Mapping::new();
    policy.insert(Value::from("PolicyDocument"), Value::Mapping(document));
    statements(&Value::Mapping(policy))
}

#[test]
fn evidence_is_written_only_by_the_functions_that_produce_evidence() {
    let template = template();
    let producers = ["RotationAudit", "Retention", "RetentionErase", "RetentionErasePastGovernance"];
    for (function, _) in functions() {
        for st in code_statements(&template, function) {
            if !mentions(&st.resource, "EvidenceBucket") {
                continue;
            }
            assert!(producers.contains(&function), "{function} ({:?}) reaches the evidence bucket", st.sid);
            assert_eq!(st.actions, ["s3:PutObject"], "{function} writes evidence and does nothing else to it");
        }
    }
    let audit: Vec<Statement> = code_statements(&template, "RotationAudit")
        .into_iter()
        .filter(|s| s.actions.iter().any(|a| a.starts_with("s3:")))
        .collect();
    assert!(audit.iter().all(|s| mentions(&s.resource, "EvidenceBucket")), "the audit writes only evidence");

    // The bucket: Object Lock on every report, and a policy that denies
    // every other principal any write, whatever its own role allows.
    let bucket = &template["Resources"]["EvidenceBucket"]["Properties"];
    assert_eq!(bucket["ObjectLockEnabled"].as_bool(), Some(true));
    let retention = &bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"];
    assert!(tag_is(&retention["Days"], "Ref") && tag_is(&retention["Mode"], "Ref"), "{retention:?}");
    assert_eq!(bucket["VersioningConfiguration"]["Status"].as_str(), Some("Enabled"));
    let policy = &template["Resources"]["EvidenceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"];
    let deny = policy
        .as_sequence()
        .expect("statements")
        .iter()
        .find(|s| s["Sid"].as_str() == Some("OnlyEvidenceProducersWrite"))
        .expect("the evidence bucket denies writes to everyone but the producers");
    assert_eq!(deny["Effect"].as_str(), Some("Deny"));
    assert_eq!(deny["Principal"].as_str(), Some("*"));
    let actions: Vec<&str> = deny["Action"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for a in ["s3:PutObject", "s3:PutObjectRetention", "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold"] {
        assert!(actions.contains(&a), "the deny covers {a}");
    }
    let allowed = format!("{:?}", deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]);
    // A role's name after the stack's: `!Sub "${AWS::StackName}-<suffix>"`
    // (none: CloudFormation names it, never one the bucket policy lists).
    let role_suffix = |function: &str| {
        let (role, _) = role_of(&template, function);
        let Value::Tagged(t) = &template["Resources"][role]["Properties"]["RoleName"] else { return None };
        t.value.as_str().and_then(|n| n.strip_prefix("${AWS::StackName}-")).map(str::to_string)
    };
    for function in producers {
        let suffix = role_suffix(function).unwrap_or_else(|| panic!("{function}'s role has no fixed name"));
        assert!(
            allowed.contains(&format!("}}-{suffix}\"")),
            "{function}'s role ({suffix}) may not write its evidence: {allowed}"
        );
    }
    for (function, _) in functions() {
        if !producers.contains(&function) {
            if let Some(suffix) = role_suffix(function) {
                assert!(
                    !allowed.contains(&format!("}}-{suffix}\"")),
                    "{function}'s role may write evidence: {allowed}"
                );
            }
        }
    }
}

#[test]
fn each_function_reaches_only_its_own_items_of_the_catalog() {
    // Which items each action may touch: a key's usage item (`key`) is
    // never deleted by anyone; the guardian lists and clears only its own
    // denied-call counters.
    type Grants<'a> = &'a [(&'a str, &'a [&'a str])];
    let expected: &[(&str, Grants)] = &[
        (
            "EncryptRecording",
            &[
                ("dynamodb:GetItem", &["recording#*", "key"]),
                ("dynamodb:PutItem", &["recording#*", "key"]),
                ("dynamodb:UpdateItem", &["recording#*", "key"]),
                ("dynamodb:DeleteItem", &["recording#*"]),
            ],
        ),
        ("Playback", &[("dynamodb:GetItem", &["recording#*"])]),
        (
            "KeyGuardian",
            &[
                ("dynamodb:GetItem", &["key", "event#*", "denied"]),
                ("dynamodb:UpdateItem", &["key", "event#*", "denied"]),
                ("dynamodb:Query", &["key", "denied"]),
                ("dynamodb:DeleteItem", &["denied"]),
            ],
        ),
        ("RotationAudit", &[("dynamodb:Query", &["key"])]),
        (
            "Rekey",
            &[
                ("dynamodb:GetItem", &["recording#*", "key"]),
                ("dynamodb:PutItem", &["recording#*", "key"]),
                ("dynamodb:UpdateItem", &["recording#*", "key"]),
                ("dynamodb:DeleteItem", &["recording#*"]),
            ],
        ),
        ("TagSweep", &[("dynamodb:GetItem", &["recording#*"]), ("dynamodb:UpdateItem", &["recording#*"])]),
        (
            "Retention",
            &[
                ("dynamodb:GetItem", &["recording#*", "retention"]),
                ("dynamodb:PutItem", &["deletion-run", "deleted#*", "retention"]),
                ("dynamodb:UpdateItem", &["recording#*", "key"]),
                ("dynamodb:DeleteItem", &["recording#*", "deletion-run", "deleted#*"]),
                ("dynamodb:ConditionCheckItem", &["recording#*"]),
                ("dynamodb:Query", &["deletion-run", "deleted#*"]),
            ],
        ),
        ("RetentionHold", &[("dynamodb:GetItem", &["recording#*"]), ("dynamodb:UpdateItem", &["recording#*"])]),
        ("RetentionErase", ERASE_GRANTS),
        ("RetentionErasePastGovernance", ERASE_GRANTS),
    ];
    const ERASE_GRANTS: &[(&str, &[&str])] = &[
        ("dynamodb:GetItem", &["recording#*"]),
        ("dynamodb:PutItem", &["deletion-run", "deleted#*"]),
        ("dynamodb:UpdateItem", &["recording#*", "key"]),
        ("dynamodb:DeleteItem", &["recording#*", "deletion-run", "deleted#*"]),
        ("dynamodb:ConditionCheckItem", &["recording#*"]),
        ("dynamodb:Query", &["deletion-run", "deleted#*"]),
    ];
    let template = template();
    let listed: BTreeSet<&str> = expected.iter().map(|(f, _)| *f).collect();
    for (function, _) in functions() {
        let uses_catalog =
            code_statements(&template, function).iter().any(|s| s.actions.iter().any(|a| a.starts_with("dynamodb:")));
        assert!(!uses_catalog || listed.contains(function), "{function} uses the catalog: list its items here");
    }
    for (function, grants) in expected {
        // The retention function's two statements apart: its Query of the
        // `retention` index (leading keys: the recording types) and its
        // stamping pass's Scan (no leading key to scope), checked below.
        let statements: Vec<Statement> = code_statements(&template, function)
            .into_iter()
            .filter(|s| s.actions.iter().any(|a| a.starts_with("dynamodb:")))
            .filter(|s| !matches!(s.sid.as_str(), "RecordingsDue" | "StampingPass" | "ListRecordings" | "MarkedRows"))
            .collect();
        assert!(!statements.is_empty(), "{function} uses the catalog");
        let granted: BTreeSet<&str> = statements.iter().flat_map(|s| s.actions.iter().map(String::as_str)).collect();
        let listed: BTreeSet<&str> = grants.iter().map(|(a, _)| *a).collect();
        assert_eq!(granted, listed, "{function}'s catalog actions");
        for st in &statements {
            let keys = &st.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
            let keys: Vec<&str> = keys
                .as_sequence()
                .unwrap_or_else(|| panic!("{function} {:?}: no dynamodb:LeadingKeys condition", st.sid))
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            for action in &st.actions {
                let leading = grants.iter().find(|(a, _)| a == action).map(|(_, k)| *k).unwrap_or_default();
                assert_eq!(keys, leading, "{function} {:?}: {action}", st.sid);
            }
        }
    }
}

#[test]
fn the_player_lists_by_the_date_index_of_the_configured_types_and_reads_only_its_client_secret() {
    let template = template();
    let code = code_statements(&template, "Playback");
    let list = code.iter().find(|s| s.sid == "ListRecordings").expect("the player's list statement");
    assert_eq!(list.actions, ["dynamodb:Query"]);
    assert!(
        matches!(&list.resource, Value::Tagged(t) if t.tag == "Sub" && t.value.as_str() == Some("${Catalog.Arn}/index/by-date")),
        "the by-date index only: {:?}",
        list.resource
    );
    assert!(tag_is(&list.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"], "Ref"), "the configured types");
    let secrets: Vec<_> = code.iter().filter(|s| s.actions.iter().any(|a| a.starts_with("secretsmanager:"))).collect();
    assert_eq!(secrets.len(), 3, "the client secret, the session keys and the front's secret, nothing else");
    let front = secrets.iter().find(|s| s.sid == "FrontSecret").expect("the front's secret");
    assert_eq!(front.actions, ["secretsmanager:GetSecretValue"]);
    assert!(
        matches!(&front.resource, Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("PlayerFrontSecret")),
        "{:?}",
        front.resource
    );
    let secret = secrets.iter().find(|s| s.sid == "ClientSecret").expect("the client secret");
    assert_eq!(secret.actions, ["secretsmanager:GetSecretValue"]);
    assert_eq!(secret.granted_if.as_deref(), Some("HasClientSecret"));
    assert!(
        matches!(&secret.resource, Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("OidcClientSecretArn")),
        "the client secret only: {:?}",
        secret.resource
    );
    let keys = secrets.iter().find(|s| s.sid == "SessionKeys").expect("the session keys");
    assert_eq!(keys.actions, ["secretsmanager:GetSecretValue"]);
    assert!(
        matches!(&keys.resource, Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("PlayerSessionKeys")),
        "its own session keys only: {:?}",
        keys.resource
    );
    // Random, generated by the template: no key anyone else can compute.
    let generated = &template["Resources"]["PlayerSessionKeys"]["Properties"]["GenerateSecretString"];
    assert!(generated["PasswordLength"].as_u64().is_some_and(|n| n >= 43), "at least 256 bits: {generated:?}");
}

/// CloudFront's managed policies the player's front must use.
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

#[test]
fn the_player_front_caches_nothing_forwards_cookie_and_range_and_alone_may_call_the_function_url() {
    let template = template();
    let resources = &template["Resources"];
    // The Function URL stays IAM-authenticated: only signed callers.
    assert_eq!(resources["Playback"]["Properties"]["FunctionUrlConfig"]["AuthType"].as_str(), Some("AWS_IAM"));
    let oac = &resources["PlayerOriginAccessControl"]["Properties"]["OriginAccessControlConfig"];
    assert_eq!(oac["OriginAccessControlOriginType"].as_str(), Some("lambda"));
    assert_eq!(oac["SigningBehavior"].as_str(), Some("always"));
    let config = &resources["PlayerDistribution"]["Properties"]["DistributionConfig"];
    let origins = config["Origins"].as_sequence().expect("origins");
    assert_eq!(origins.len(), 1);
    assert!(tag_is(&origins[0]["OriginAccessControlId"], "GetAtt"), "the origin is signed by the OAC");
    let mut behaviours = vec![&config["DefaultCacheBehavior"]];
    behaviours.extend(config["CacheBehaviors"].as_sequence().expect("cache behaviours"));
    assert!(
        behaviours.iter().any(|b| b["PathPattern"].as_str() == Some("/recordings/*")),
        "a behaviour of its own for the decrypted audio"
    );
    for b in behaviours {
        let path = b["PathPattern"].as_str().unwrap_or("default");
        // Decrypted audio never sits at the edge; nothing does.
        assert_eq!(b["CachePolicyId"].as_str(), Some(CACHING_DISABLED), "{path}: CachingDisabled");
        // What reaches the function: PlayerOriginRequests (below).
        assert!(
            matches!(&b["OriginRequestPolicyId"], Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("PlayerOriginRequests")),
            "{path}: the player's origin request policy"
        );
        let methods: Vec<&str> =
            b["AllowedMethods"].as_sequence().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(methods, ["GET", "HEAD"], "{path}: reads only");
        assert_ne!(b["ViewerProtocolPolicy"].as_str(), Some("allow-all"), "{path}: HTTPS only");
        assert!(
            matches!(&b["ResponseHeadersPolicyId"], Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("PlayerSecurityHeaders")),
            "{path}: the security headers on every answer"
        );
    }
    // The session cookies (their real, __Host- names), Range (seeking), a
    // tool's token and the viewer's address reach the function; Host does
    // not (the Function URL wants its own).
    let requests = &resources["PlayerOriginRequests"]["Properties"]["OriginRequestPolicyConfig"];
    let names = |v: &Value| -> Vec<String> {
        v.as_sequence().expect("a list").iter().map(|h| h.as_str().unwrap().to_ascii_lowercase()).collect()
    };
    assert_eq!(requests["HeadersConfig"]["HeaderBehavior"].as_str(), Some("whitelist"));
    let headers = names(&requests["HeadersConfig"]["Headers"]);
    for needed in ["range", "if-range", "x-callvault-authorization", "cloudfront-viewer-address", "user-agent"] {
        assert!(headers.iter().any(|h| h == needed), "{needed} is not forwarded: {headers:?}");
    }
    assert!(!headers.iter().any(|h| h == "host" || h == "x-callvault-front"), "{headers:?}");
    assert_eq!(requests["CookiesConfig"]["CookieBehavior"].as_str(), Some("whitelist"));
    let cookies = names(&requests["CookiesConfig"]["Cookies"]);
    assert_eq!(
        cookies,
        [::playback::auth::session::SESSION_COOKIE, ::playback::auth::session::LOGIN_COOKIE]
            .map(str::to_ascii_lowercase)
    );
    // Every request it sends carries the front's secret, from the secret the
    // template generates (the function trusts CloudFront-Viewer-Address
    // only beside it).
    let custom = origins[0]["OriginCustomHeaders"].as_sequence().expect("the origin's custom headers");
    assert_eq!(custom.len(), 1);
    assert_eq!(custom[0]["HeaderName"].as_str(), Some(::playback::front::FRONT_HEADER));
    let Value::Tagged(value) = &custom[0]["HeaderValue"] else { panic!("the front's header is not !Sub") };
    assert_eq!(value.value.as_str(), Some("{{resolve:secretsmanager:${PlayerFrontSecret}:SecretString}}"));
    let generated = &resources["PlayerFrontSecret"]["Properties"]["GenerateSecretString"];
    assert!(generated["PasswordLength"].as_u64().is_some_and(|n| n >= 32), "{generated:?}");

    // The headers: HSTS (a year or more, the origin cannot weaken it), no
    // sniffing, never framed, no Referer; the page's own CSP kept.
    let headers =
        &resources["PlayerSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"];
    let hsts = &headers["StrictTransportSecurity"];
    assert!(hsts["AccessControlMaxAgeSec"].as_u64().is_some_and(|s| s >= 31_536_000), "{hsts:?}");
    assert_eq!(hsts["Override"].as_bool(), Some(true));
    assert_eq!(headers["ContentTypeOptions"]["Override"].as_bool(), Some(true));
    assert_eq!(headers["FrameOptions"]["FrameOption"].as_str(), Some("DENY"));
    assert_eq!(headers["ReferrerPolicy"]["ReferrerPolicy"].as_str(), Some("no-referrer"));
    let csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"].as_str().unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["ContentSecurityPolicy"]["Override"].as_bool(), Some(false), "the page's own policy stands");
    assert!(playback::page::CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    // Only this distribution invokes it on CloudFront's behalf.
    for permission in ["PlayerInvokeUrlPermission", "PlayerInvokePermission"] {
        let p = &resources[permission]["Properties"];
        assert_eq!(p["Principal"].as_str(), Some("cloudfront.amazonaws.com"), "{permission}");
        let Value::Tagged(source) = &p["SourceArn"] else { panic!("{permission}: SourceArn is not !Sub") };
        assert!(source.value.as_str().unwrap().ends_with(":distribution/${PlayerDistribution}"), "{permission}");
    }
    assert_eq!(resources["PlayerInvokeUrlPermission"]["Properties"]["FunctionUrlAuthType"].as_str(), Some("AWS_IAM"));
}

#[test]
fn retention_deletes_versions_and_writes_evidence_and_can_read_or_write_no_recording() {
    let template = template();
    let statements = code_statements(&template, "Retention");
    let actions: BTreeSet<&str> = statements.iter().flat_map(|s| s.actions.iter().map(String::as_str)).collect();
    for never in ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:PutObjectRetention", "kms:Decrypt"] {
        assert!(!actions.contains(never), "the retention role may {never}");
    }
    assert!(!actions.iter().any(|a| a.starts_with("kms:")), "no KMS at all: it never sees a data key");
    let puts: Vec<&Statement> = statements.iter().filter(|s| s.actions.iter().any(|a| a == "s3:PutObject")).collect();
    assert_eq!(puts.len(), 1);
    assert!(mentions(&puts[0].resource, "EvidenceBucket") && !mentions(&puts[0].resource, "VaultBucket"));
    let text = format!("{:?}", puts[0].resource);
    assert!(text.contains("/retention/*") && text.contains("/erasure/*"), "{text}");
    // The index Query is scoped to the recording types; the Scan is the table's only.
    let due = statements.iter().find(|s| s.sid == "RecordingsDue").expect("RecordingsDue");
    assert_eq!(due.actions, ["dynamodb:Query"]);
    assert!(format!("{:?}", due.resource).contains("/index/retention"));
    assert!(tag_is(&due.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"], "Ref"));
    let scan = statements.iter().find(|s| s.sid == "StampingPass").expect("StampingPass");
    assert_eq!(scan.actions, ["dynamodb:Scan"]);
    for (function, _) in functions() {
        if !function.starts_with("Retention") {
            let statements = code_statements(&template, function);
            // The tag sweep scans its sparse index, never the table.
            for st in statements.iter().filter(|s| s.actions.iter().any(|a| a == "dynamodb:Scan")) {
                assert!(
                    function == "TagSweep" && format!("{:?}", st.resource).contains("/index/tags-due"),
                    "{function} may scan the catalog"
                );
            }
            let granted: Vec<String> = statements.into_iter().flat_map(|s| s.actions).collect();
            assert!(
                !granted.iter().any(|a| a == "s3:DeleteObjectVersion" && function != "EncryptRecording"),
                "{function} deletes versions"
            );
        }
    }
}

/// The actions a function's role is granted.
fn granted(template: &Value, function: &str) -> BTreeSet<String> {
    code_statements(template, function).into_iter().flat_map(|s| s.actions).collect()
}

/// The functions an operators' managed policy lets its holder invoke, and
/// whether every grant goes through an IAM-authenticated Function URL only.
fn invocable_by(template: &Value, policy: &str) -> (BTreeSet<String>, bool) {
    let document = &template["Resources"][policy]["Properties"];
    let mut functions = BTreeSet::new();
    let mut url_only = true;
    for st in statements(document) {
        for action in &st.actions {
            let target = match &st.resource {
                Value::Tagged(t) if t.tag == "GetAtt" => t.value.as_str().and_then(|s| s.strip_suffix(".Arn")),
                _ => None,
            };
            let target = target.unwrap_or_else(|| panic!("{policy}: {action} on {:?}, not one function", st.resource));
            functions.insert(target.to_string());
            let condition = format!("{:?}", st.condition);
            url_only &= match action.as_str() {
                "lambda:InvokeFunctionUrl" => {
                    st.condition["StringEquals"]["lambda:FunctionUrlAuthType"].as_str() == Some("AWS_IAM")
                }
                "lambda:InvokeFunction" => {
                    st.condition["Bool"]["lambda:InvokedViaFunctionUrl"].as_str() == Some("true")
                }
                other => panic!("{policy} grants {other} ({condition})"),
            };
        }
    }
    (functions, url_only)
}

/// Retention by duty: the hold operator cannot erase, the erase operator
/// cannot erase past governance retention, and none of them can hand a
/// duty function a caller of their own making (a plain Invoke): each
/// policy reaches its own duty's function, only through its Function URL
/// with AuthType AWS_IAM, which hands the function the caller Lambda
/// authenticated. Behind each URL, the function's own role holds only its
/// duty's calls, so IAM, not only the code, keeps the duties apart.
#[test]
fn each_retention_duty_is_its_own_permission_and_the_caller_is_the_one_aws_authenticated() {
    let template = template();
    let resources = &template["Resources"];
    for (policy, function, duty) in [
        ("RetentionHoldOperatorPolicy", "RetentionHold", "hold"),
        ("RetentionEraseOperatorPolicy", "RetentionErase", "erase"),
        ("RetentionErasePastGovernanceOperatorPolicy", "RetentionErasePastGovernance", "erase-past-governance"),
    ] {
        let (reaches, url_only) = invocable_by(&template, policy);
        assert_eq!(reaches, BTreeSet::from([function.to_string()]), "{policy} reaches its own duty's function only");
        assert!(url_only, "{policy}: every grant goes through the IAM-authenticated Function URL only");
        let props = &resources[function]["Properties"];
        assert_eq!(props["FunctionUrlConfig"]["AuthType"].as_str(), Some("AWS_IAM"), "{function}'s URL");
        assert_eq!(props["Environment"]["Variables"]["RETENTION_DUTY"].as_str(), Some(duty), "{function}'s duty");
        assert_eq!(resources[function]["Metadata"]["BuildProperties"]["Binary"].as_str(), Some("retention"));
    }
    assert!(resources["Retention"]["Properties"]["FunctionUrlConfig"].is_null(), "the run has no URL");
    assert!(resources["Retention"]["Properties"]["Environment"]["Variables"]["RETENTION_DUTY"].is_null());
    assert!(resources["RetentionOperatorPolicy"].is_null(), "no policy grants every duty at once");

    // The hold operator cannot erase: its function's role deletes nothing.
    let hold = granted(&template, "RetentionHold");
    for never in [
        "s3:DeleteObjectVersion",
        "s3:DeleteObject",
        "s3:BypassGovernanceRetention",
        "dynamodb:DeleteItem",
        "s3:PutObject",
        "s3:PutObjectRetention",
    ] {
        assert!(!hold.contains(never), "the hold duty may {never}");
    }
    // The erase operator cannot bypass governance retention, nor hold.
    let erase = granted(&template, "RetentionErase");
    assert!(erase.contains("s3:DeleteObjectVersion"));
    for never in ["s3:BypassGovernanceRetention", "s3:PutObjectLegalHold", "s3:PutObjectRetention", "dynamodb:Scan"] {
        assert!(!erase.contains(never), "the erase duty may {never}");
    }
    let past = granted(&template, "RetentionErasePastGovernance");
    assert_eq!(
        past.difference(&erase).cloned().collect::<Vec<_>>(),
        ["s3:BypassGovernanceRetention"],
        "past governance: the erase duty's calls and the bypass, nothing more"
    );
    assert!(!past.contains("s3:PutObjectLegalHold"));
    for function in ["RetentionErase", "RetentionErasePastGovernance"] {
        for st in code_statements(&template, function) {
            if st.actions.iter().any(|a| a == "s3:PutObject") {
                let text = format!("{:?}", st.resource);
                assert!(
                    text.contains("EvidenceBucket") && text.contains("/erasure/*") && !text.contains("/retention/*")
                );
            }
        }
    }

    // No role and no policy of this stack invokes a duty function but the
    // duty's own operators' policy: nobody can send one a request with a
    // caller of their own making.
    for (name, resource) in resources.as_mapping().expect("Resources") {
        let name = name.as_str().unwrap_or_default();
        let kind = resource["Type"].as_str().unwrap_or_default();
        let text = format!("{:?}", resource["Properties"]);
        if name.ends_with("OperatorPolicy") && name.starts_with("Retention") {
            continue;
        }
        if ["AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::Lambda::Permission"].contains(&kind)
            && text.contains("lambda:")
        {
            for duty in ["RetentionHold", "RetentionErase", "RetentionErasePastGovernance"] {
                let named = text.contains(&format!("\"{duty}.Arn\"")) || text.contains(&format!("String(\"{duty}\")"));
                assert!(!named, "{name} may invoke {duty}");
            }
        }
    }
    // And the schedule reaches only the run.
    for function in ["RetentionHold", "RetentionErase", "RetentionErasePastGovernance"] {
        assert!(resources[function]["Properties"]["Events"].is_null(), "{function} has no event source");
    }
}

#[test]
fn the_vault_has_no_default_retention_that_could_outlast_a_types_policy() {
    let template = template();
    let lock = format!("{:?}", template["Resources"]["VaultBucket"]["Properties"]["ObjectLockConfiguration"]);
    assert!(!lock.contains("DefaultRetention"), "a bucket default retention could keep a type past its policy: {lock}");
    // Rekey may set a legal hold on a new version, here or on a move's copy
    // in the other region's vault, never release one.
    let holds: Vec<Statement> = code_statements(&template, "Rekey")
        .into_iter()
        .filter(|s| s.actions.iter().any(|a| a == "s3:PutObjectLegalHold"))
        .collect();
    let sids: Vec<&str> = holds.iter().map(|s| s.sid.as_str()).collect();
    assert_eq!(sids, ["NewVersionsKeepTheHold", "TargetVersionsKeepTheHold"]);
    for hold in &holds {
        assert_eq!(hold.actions, ["s3:PutObjectLegalHold"], "{}", hold.sid);
        assert_eq!(hold.condition["StringEquals"]["s3:object-lock-legal-hold"].as_str(), Some("ON"), "{}", hold.sid);
    }
    assert_eq!(holds[1].granted_if.as_deref(), Some("HasMoveTarget"));
}

/// Each branch of an `!If` (recursively); anything else is one branch.
fn branches(v: &Value) -> Vec<&Value> {
    match v {
        Value::Tagged(t) if t.tag == "If" => {
            let parts = t.value.as_sequence().expect("!If [condition, then, else]");
            branches(&parts[1]).into_iter().chain(branches(&parts[2])).collect()
        }
        other => vec![other],
    }
}

#[test]
fn every_key_a_new_message_may_be_wrapped_under_here_is_one_playback_may_unwrap() {
    // A re-key's target (and a new recording's key) that playback could not
    // unwrap would complete, and leave the recording unplayable once the old
    // version goes. The rekey role wraps in this region only under
    // RecordingKeyArn, and playback unwraps under it in every branch; the
    // other region's keys (MoveTargetKeyArns) are that deployment's
    // playback's, checked by its own template.
    let template = template();
    for function in ["EncryptRecording", "Rekey"] {
        for st in code_statements(&template, function) {
            if !st.actions.iter().any(|a| a == "kms:GenerateDataKey" || a == "kms:Encrypt") {
                continue;
            }
            let at = format!("{function} statement {:?}", st.sid);
            if mentions(&st.resource, "MoveTargetKeyArns") {
                assert_eq!(st.granted_if.as_deref(), Some("HasMoveTargetKeys"), "{at}");
                continue;
            }
            let Value::Tagged(r) = &st.resource else { panic!("{at}: wraps under {:?}", st.resource) };
            assert!(tag_is(&st.resource, "Ref") && r.value.as_str() == Some("RecordingKeyArn"), "{at}: {r:?}");
        }
    }
    let unwrap: Vec<Statement> = code_statements(&template, "Playback")
        .into_iter()
        .filter(|s| s.actions == ["kms:Decrypt"] && s.granted_if.is_none())
        .collect();
    assert_eq!(unwrap.len(), 1, "playback's one unconditional unwrap statement");
    for branch in branches(&unwrap[0].resource) {
        assert!(
            format!("{branch:?}").contains("RecordingKeyArn"),
            "playback cannot unwrap under RecordingKeyArn: {branch:?}"
        );
    }
}

#[test]
fn the_tag_sweep_may_only_tag_a_pending_version_catalogued_and_clear_a_rows_mark() {
    let template = template();
    let granted = code_statements(&template, "TagSweep");
    let sids: Vec<&str> = granted.iter().map(|s| s.sid.as_str()).collect();
    assert_eq!(sids, ["MarkedRows", "TheRowNow", "ClearTheMark", "VersionStates", "PendingBecomesCatalogued"]);
    for st in &granted {
        let at = format!("TagSweep statement {:?}", st.sid);
        assert!(st.granted_if.is_none(), "{at}: unconditional");
        for action in &st.actions {
            assert!(!action.starts_with("kms:"), "{at}: no key");
            assert!(!DESTRUCTIVE_S3.contains(&action.as_str()), "{at}: may destroy vault objects");
            assert!(
                !matches!(action.as_str(), "s3:GetObject" | "s3:GetObjectVersion" | "s3:PutObject"),
                "{at}: no bytes"
            );
        }
    }
    // The one transition: pending -> catalogued, with no other tag key.
    let tagging: Vec<&Statement> =
        granted.iter().filter(|s| s.actions.iter().any(|a| a.contains("Tagging") && a.starts_with("s3:Put"))).collect();
    assert_eq!(tagging.len(), 1);
    let st = tagging[0];
    assert_eq!(st.actions, ["s3:PutObjectVersionTagging"]);
    assert_eq!(st.condition["StringEquals"]["s3:ExistingObjectTag/callvault-state"].as_str(), Some("pending"));
    assert_eq!(st.condition["StringEquals"]["s3:RequestObjectTag/callvault-state"].as_str(), Some("catalogued"));
    assert_eq!(
        st.condition["ForAllValues:StringEquals"]["s3:RequestObjectTagKeys"],
        serde_yaml_ng::from_str::<Value>("[callvault-state]").unwrap()
    );
    // The catalog: its index alone to find the rows, a row's mark alone to change.
    assert!(format!("{:?}", granted[0].resource).contains("/index/tags-due"), "{:?}", granted[0].resource);
    let update = &granted[2];
    assert_eq!(update.actions, ["dynamodb:UpdateItem"]);
    let attributes: Vec<&str> = update.condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]
        .as_sequence()
        .expect("the attributes it may name")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(attributes, ["pk", "sk", "tags_due"]);
    assert_eq!(update.condition["StringEqualsIfExists"]["dynamodb:ReturnValues"].as_str(), Some("NONE"));
}

/// A vault lifecycle rule as the invariant sees it: the state its tag
/// filter names, and whether it expires anything.
fn vault_rules(template: &Value) -> Vec<(String, Option<String>, bool, Option<i64>)> {
    let rules = template["Resources"]["VaultBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .expect("the vault's lifecycle rules");
    rules
        .iter()
        .map(|r| {
            let id = r["Id"].as_str().unwrap_or("").to_string();
            let state = r["TagFilters"].as_sequence().and_then(|filters| {
                filters
                    .iter()
                    .find(|f| f["Key"].as_str() == Some("callvault-state"))
                    .and_then(|f| f["Value"].as_str())
                    .map(str::to_string)
            });
            let expires = r.get("ExpirationInDays").is_some()
                || r.get("ExpirationDate").is_some()
                || r.get("NoncurrentVersionExpiration").is_some()
                || r.get("Transitions").is_some()
                || r.get("NoncurrentVersionTransitions").is_some();
            let days =
                r["ExpirationInDays"].as_i64().or_else(|| r["NoncurrentVersionExpiration"]["NoncurrentDays"].as_i64());
            (id, state, expires, days)
        })
        .collect()
}

#[test]
fn no_lifecycle_rule_can_reach_a_catalogued_version_and_the_sweep_runs_long_before_the_pending_rule() {
    // The invariant (docs/design.md, "What the lifecycle rules can reach"):
    // every rule that expires anything is filtered on a callvault-state
    // other than `catalogued`; a version the catalog names is tagged
    // `catalogued`, or its row is marked and the daily sweep tags it.
    let template = template();
    let rules = vault_rules(&template);
    assert!(rules.iter().any(|(_, s, e, _)| *e && s.as_deref() == Some("pending")), "{rules:?}");
    for (id, state, expires, _) in &rules {
        if *expires {
            let state = state.as_deref().unwrap_or_else(|| panic!("rule {id} expires versions without a state filter"));
            assert!(["pending", "superseded", "moved"].contains(&state), "rule {id} reaches {state}");
        }
    }
    let pending_days = rules.iter().find(|(_, s, _, _)| s.as_deref() == Some("pending")).and_then(|r| r.3).unwrap();
    let schedule = template["Resources"]["TagSweep"]["Properties"]["Events"]["Daily"]["Properties"]["Schedule"]
        .as_str()
        .expect("the sweep's schedule");
    let fields: Vec<&str> = schedule.trim_start_matches("cron(").trim_end_matches(')').split(' ').collect();
    assert_eq!(&fields[2..], ["*", "*", "?", "*"], "daily: {schedule}");
    // A mark is swept once older than an hour, at the next daily run, with
    // 10 retries of a failed run within the hour: at most two days.
    assert!(pending_days >= 7, "the pending rule waits {pending_days} days, far past the sweep's two");
    // Nobody can tag a catalogued version back to pending.
    for (function, _) in functions() {
        for st in code_statements(&template, function) {
            if st.actions.iter().any(|a| a.contains("ObjectTagging") || a.contains("ObjectVersionTagging")) {
                let to = &st.condition["StringEquals"]["s3:RequestObjectTag/callvault-state"];
                let from = format!("{:?}", st.condition["StringEquals"]["s3:ExistingObjectTag/callvault-state"]);
                let from_if =
                    format!("{:?}", st.condition["StringEqualsIfExists"]["s3:ExistingObjectTag/callvault-state"]);
                if to.as_str() == Some("pending") {
                    assert!(!from.contains("catalogued") && !from_if.contains("catalogued"), "{function} {:?}", st.sid);
                }
            }
        }
    }
}

// ------------------------------------------------------------------ the key's own policy

fn key_policy() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("infra/key.yaml")).expect("infra/key.yaml");
    let key: Value = serde_yaml_ng::from_str(&text).expect("infra/key.yaml parses");
    let resources = key["Resources"].as_mapping().expect("Resources");
    let (_, k) = resources
        .iter()
        .find(|(_, r)| r["Type"].as_str() == Some("AWS::KMS::Key"))
        .expect("infra/key.yaml creates a key");
    k["Properties"]["KeyPolicy"]["Statement"].as_sequence().expect("the key policy's statements").clone()
}

/// Every action a statement names, whatever its effect, through `!If`s.
fn key_statements(effect: &str) -> Vec<Value> {
    fn walk(v: &Value, effect: &str, out: &mut Vec<Value>) {
        match v {
            Value::Tagged(t) if t.tag == "If" => {
                let parts = t.value.as_sequence().expect("!If");
                walk(&parts[1], effect, out);
                walk(&parts[2], effect, out);
            }
            Value::Mapping(m) if m.get("Effect").and_then(Value::as_str) == Some(effect) => out.push(v.clone()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for st in key_policy() {
        walk(&st, effect, &mut out);
    }
    out
}

fn actions_of(st: &Value) -> Vec<String> {
    match &st["Action"] {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(s) => s.iter().map(|a| a.as_str().expect("action").to_string()).collect(),
        other => panic!("unexpected Action {other:?}"),
    }
}

#[test]
fn the_key_policy_lets_policy_changes_grants_and_replicas_through_only_with_mfa_or_the_stack() {
    // A grant or a replica can give Decrypt to anyone; a new policy can drop
    // every guardrail. Denied to every principal without MFA unless
    // CloudFormation makes the call (the key stack's own updates).
    let denies = key_statements("Deny");
    for action in ["kms:PutKeyPolicy", "kms:CreateGrant", "kms:ReplicateKey"] {
        let gate = denies
            .iter()
            .find(|st| actions_of(st).iter().any(|a| a == action))
            .unwrap_or_else(|| panic!("no Deny gates {action}"));
        assert_eq!(gate["Principal"]["AWS"].as_str(), Some("*"), "{action}: the gate applies to everyone");
        assert_eq!(gate["Resource"].as_str(), Some("*"));
        // `!If [HasStackRole, {MFA, not the stack's role}, {MFA}]`: the only
        // way around MFA is the stack's own CloudFormation service role; not
        // "any call through CloudFormation", which any stack could make.
        let Value::Tagged(t) = &gate["Condition"] else { panic!("{action}: the condition is an !If") };
        assert_eq!(t.tag, "If");
        let parts = t.value.as_sequence().unwrap();
        assert_eq!(parts[0].as_str(), Some("HasStackRole"));
        let (with_role, without) = (&parts[1], &parts[2]);
        for cond in [with_role, without] {
            assert_eq!(cond["BoolIfExists"]["aws:MultiFactorAuthPresent"].as_str(), Some("false"), "{action}: MFA");
            assert!(!format!("{cond:?}").contains("CalledVia"), "{action}: not any CloudFormation call");
        }
        assert_eq!(without.as_mapping().map(|m| m.len()), Some(1), "{action}: MFA, nothing else: {without:?}");
        assert_eq!(with_role.as_mapping().map(|m| m.len()), Some(2), "{action}: {with_role:?}");
        let role = &with_role["ArnNotEquals"]["aws:PrincipalArn"];
        assert!(tag_is(role, "Ref") && format!("{role:?}").contains("KeyStackRoleArn"), "{action}: {role:?}");
    }
    // Deletion: MFA and the 30-day window.
    let deletion: Vec<&Value> =
        denies.iter().filter(|st| actions_of(st).iter().any(|a| a == "kms:ScheduleKeyDeletion")).collect();
    assert!(deletion
        .iter()
        .any(|st| st["Condition"]["BoolIfExists"]["aws:MultiFactorAuthPresent"].as_str() == Some("false")));
    assert!(deletion.iter().any(|st| st["Condition"]["NumericLessThan"]["kms:ScheduleKeyDeletionPendingWindowInDays"]
        .as_u64()
        == Some(30)));
    // Nobody is allowed to create grants at all.
    for st in key_statements("Allow") {
        let actions = actions_of(&st);
        assert!(!actions.iter().any(|a| a == "kms:CreateGrant" || a == "kms:*"), "{actions:?} allows grants");
    }
}

#[test]
fn the_key_policy_lets_the_rekey_role_move_recordings_under_the_org_context_only() {
    let allows = key_statements("Allow");
    let rekey: Vec<&Value> = allows.iter().filter(|st| format!("{:?}", st["Condition"]).contains("-rekey")).collect();
    let mut actions: Vec<String> = rekey.iter().flat_map(|st| actions_of(st)).collect();
    actions.sort();
    actions.dedup();
    assert_eq!(
        actions,
        ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:GetPublicKey"],
        "the rekey role unwraps, wraps and checks the key, nothing else"
    );
    for st in &rekey {
        let at = format!("{:?}", st["Sid"]);
        // The role itself, by ARN, in the platform's account.
        let who = format!("{:?}", st["Condition"]["ArnEquals"]["aws:PrincipalArn"]);
        assert!(who.contains(":role/${PlatformStackName}-rekey"), "{at}: {who}");
        let crypto = actions_of(st).iter().any(|a| a != "kms:DescribeKey" && a != "kms:GetPublicKey");
        if crypto {
            let cond = &st["Condition"]["StringEquals"];
            assert!(
                tag_is(&cond["kms:EncryptionContext:org"], "Ref")
                    || cond["kms:EncryptionAlgorithm"].as_str() == Some("RSAES_OAEP_SHA_256"),
                "{at}: under the org's context (or RSA-OAEP): {cond:?}"
            );
        }
    }
}

#[test]
fn another_regions_rekey_role_may_wrap_with_the_key_and_never_unwrap() {
    let allows = key_statements("Allow");
    let from_elsewhere: Vec<&Value> =
        allows.iter().filter(|st| format!("{:?}", st["Principal"]).contains("MoveSourceRekeyRoleArn")).collect();
    assert!(!from_elsewhere.is_empty(), "infra/key.yaml lets another region's rekey role in");
    for st in from_elsewhere {
        let actions = actions_of(st);
        assert!(!actions.iter().any(|a| a == "kms:Decrypt" || a == "kms:ReEncryptFrom"), "{actions:?}");
        if actions.iter().any(|a| a == "kms:GenerateDataKey" || a == "kms:Encrypt") {
            assert!(tag_is(&st["Condition"]["StringEquals"]["kms:EncryptionContext:org"], "Ref"), "{st:?}");
        } else {
            assert_eq!(actions, ["kms:DescribeKey", "kms:GetPublicKey"]);
        }
    }
}

#[test]
fn a_replica_of_the_key_in_another_region_has_the_same_policy_and_guardrails() {
    let text = std::fs::read_to_string(root().join("infra/key.yaml")).expect("infra/key.yaml");
    let key: Value = serde_yaml_ng::from_str(&text).expect("infra/key.yaml parses");
    let resources = key["Resources"].as_mapping().expect("Resources");
    let of_type = |t: &str| resources.iter().find(|(_, r)| r["Type"].as_str() == Some(t)).map(|(_, r)| r.clone());
    let (primary, replica) = (of_type("AWS::KMS::Key").unwrap(), of_type("AWS::KMS::ReplicaKey").expect("a replica"));
    assert_eq!(replica["Properties"]["KeyPolicy"], primary["Properties"]["KeyPolicy"], "the same statements");
    assert_eq!((primary["Condition"].as_str(), replica["Condition"].as_str()), (Some("IsPrimary"), Some("IsReplica")));
    assert_eq!(replica["Properties"]["PendingWindowInDays"].as_u64(), Some(30));
    assert!(tag_is(&replica["Properties"]["PrimaryKeyArn"], "Ref"));
}

/// Every name the template builds from the stack's name fits its AWS
/// limit for the longest stack name the deploy guide allows (39
/// characters): a function's name 64, a role's 64, a managed policy's 128.
#[test]
fn every_name_fits_for_the_longest_stack_name() {
    let template = template();
    let stack = "a".repeat(39);
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        let props = &resource["Properties"];
        for (field, limit) in [("FunctionName", 64), ("RoleName", 64), ("ManagedPolicyName", 128)] {
            if let Value::Tagged(t) = &props[field] {
                if let Some(text) = t.value.as_str() {
                    let built = text.replace("${AWS::StackName}", &stack);
                    assert!(built.len() <= limit, "{name:?}'s {field} is {} characters: {built}", built.len());
                }
            }
        }
    }
}
