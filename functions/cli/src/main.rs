//! `callvault`: the operator command. Encrypts, decrypts and inspects AWS
//! Encryption SDK v2 messages with KMS keys, and runs the vault's operations
//! (redrive, audit, keys, rekey, hold, erase), using the standard AWS
//! environment (AWS_REGION, AWS_ENDPOINT_URL, credentials).
//!
//! Exit status: 0 done; 1 the command failed, or found what it reports (a
//! non-compliant key, recordings still failing); 2 the command line is wrong,
//! nothing was done. A failure is one line on standard error,
//! `callvault: error[<code>]: <what happened>: <what to do>`.

mod audit;
mod aws;
mod commands;
mod io;
mod keys;
mod redrive;
mod rekey;
mod retention;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vault::OperationError;

/// A failure, reported as one line: `callvault: error[code]: message`.
#[derive(Debug)]
pub struct CliError {
    pub code: &'static str,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self { code: "usage", message: message.into() }
    }
    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        Self { code: "io", message: format!("{what}: {e}") }
    }
    /// An AWS call of the command itself that failed (`aws_error`).
    pub fn aws(what: &str, e: impl std::fmt::Display) -> Self {
        Self { code: "aws_error", message: format!("{what}: {e}") }
    }

    /// 2 for a command line that is wrong (nothing was done), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self.code {
            "usage" | "key_filter_required" => 2,
            _ => 1,
        }
    }
}

impl From<vault::flow::FlowError> for CliError {
    fn from(e: vault::flow::FlowError) -> Self {
        Self { code: e.code(), message: e.to_string() }
    }
}
impl From<vault::KeyError> for CliError {
    fn from(e: vault::KeyError) -> Self {
        Self { code: e.code(), message: e.to_string() }
    }
}
impl From<vault::ports::objects::S3Error> for CliError {
    fn from(e: vault::ports::objects::S3Error) -> Self {
        Self { code: e.code(), message: e.to_string() }
    }
}
impl From<envelope::DecryptError> for CliError {
    fn from(e: envelope::DecryptError) -> Self {
        Self { code: e.code(), message: e.to_string() }
    }
}

#[derive(Parser)]
#[command(
    name = "callvault",
    version,
    about = "The operator's command for recordings encrypted under your own KMS keys (AWS Encryption SDK messages)",
    after_help = "Every command uses the standard AWS environment: AWS_REGION, AWS_PROFILE or AWS_ACCESS_KEY_ID \
                  and AWS_SECRET_ACCESS_KEY, and AWS_ENDPOINT_URL for a local AWS.\n\
                  Exit status: 0 done; 1 failed, with one line on standard error: error[code]: what happened: what \
                  to do; 2 the arguments are wrong, nothing was done. Every code is in docs/cli.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt a file into a message under your KMS keys
    ///
    /// The first key must be in AWS_REGION; the others are disaster-recovery
    /// keys. The official aws-encryption-cli decrypts the message too.
    Encrypt {
        /// A KMS key ARN, arn:aws:kms:<region>:<account>:key/<id>, symmetric
        /// or RSA; repeat for disaster-recovery keys (any region).
        #[arg(long = "key", required = true, value_name = "ARN")]
        keys: Vec<String>,
        /// An encryption context pair, KEY=VALUE (e.g. org=acme); repeatable.
        #[arg(long = "context", value_name = "K=V")]
        context: Vec<String>,
        /// Plaintext bytes per frame (a ranged decrypt reads whole frames).
        #[arg(long, default_value_t = envelope::DEFAULT_FRAME_LENGTH, value_name = "N")]
        frame_length: u32,
        /// The plaintext: a file, `-` (standard input) or s3://bucket/key.
        input: String,
        /// The message: a file, `-` (standard output) or s3://bucket/key;
        /// written only when complete.
        output: String,
    },
    /// Decrypt a message, whole or a byte range
    ///
    /// Refuses unless every --context pair is in the message. KMS is called
    /// only for keys you trust: name them (--key) or their accounts
    /// (--account); a message's header is untrusted until it authenticates.
    Decrypt {
        /// Required encryption context pair; repeatable. `org=<organisation>`
        /// is required unless --any-org.
        #[arg(long = "context", value_name = "K=V")]
        context: Vec<String>,
        /// A KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) that may
        /// unwrap the data key; repeatable.
        #[arg(long = "key", value_name = "ARN")]
        keys: Vec<String>,
        /// A 12-digit account whose KMS keys may unwrap the data key; repeatable.
        #[arg(long = "account", value_name = "ACCOUNT_ID")]
        accounts: Vec<String>,
        /// The partition of --account (aws, aws-cn, aws-us-gov).
        #[arg(long, value_name = "PARTITION", default_value = "aws")]
        partition: String,
        /// Decrypt a message whose context names no org (not callvault's).
        #[arg(long)]
        any_org: bool,
        /// Plaintext byte range: START-END (inclusive, e.g. 0-1023) or START-
        /// (to the end); only the frames that cover it are read.
        #[arg(long, value_name = "START-END")]
        range: Option<String>,
        /// The message: a file, `-` (standard input) or s3://bucket/key.
        input: String,
        /// The plaintext: a file (mode 0600, written under a temporary name
        /// and renamed on success), `-` (standard output) or s3://bucket/key
        /// (completed on success, aborted otherwise).
        output: String,
    },
    /// Print a message's header and plaintext length as JSON (no KMS call)
    Inspect {
        /// The message: a file, `-` (standard input) or s3://bucket/key.
        input: String,
    },
    /// Re-submit recordings that could not be encrypted, once the cause is fixed
    ///
    /// From encrypt-recording's dead letters (--queue) or the ingest objects
    /// tagged callvault-status (--bucket). Exit status 1 while any still fails.
    Redrive {
        /// The encrypt-recording function (name or ARN).
        #[arg(long, value_name = "NAME")]
        function: String,
        /// The dead-letter queue URL.
        #[arg(long, value_name = "URL", required_unless_present = "bucket", conflicts_with = "bucket")]
        queue: Option<String>,
        /// The ingest bucket: redrive every object tagged callvault-status.
        #[arg(long, value_name = "BUCKET")]
        bucket: Option<String>,
        /// Only keys under this prefix (with --bucket).
        #[arg(long, default_value = "", requires = "bucket")]
        prefix: String,
        /// List what would be redriven, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move recordings onto other keys (or into another region's vault)
    ///
    /// Each becomes a new message under the target keys (new data key, every frame encrypted again), inside
    /// the vault, through the `rekey` function. Select them with --from-key
    /// and/or --type; --dry-run says what would move. By default an S3
    /// Batch Operations job does the work (it waits for confirmation unless
    /// --confirm); --local runs the same tasks on this machine.
    Rekey {
        /// Only recordings wrapped under this key.
        #[arg(long, value_name = "ARN")]
        from_key: Option<String>,
        /// Only recordings of this type; repeatable.
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        /// A target key ARN, primary first, then disaster-recovery keys;
        /// repeatable. Without it, each type's configured keys.
        #[arg(long = "to-key", value_name = "ARN")]
        to_keys: Vec<String>,
        /// Say what would move (recordings, bytes, per key and type); change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Move the recordings into the deployment of this region (with
        /// --to-vault and --to-catalog): each is catalogued there, and its
        /// row here becomes a marker of where it went.
        #[arg(long, value_name = "REGION", requires_all = ["to_vault", "to_catalog"])]
        to_region: Option<String>,
        /// That deployment's vault bucket.
        #[arg(long, value_name = "BUCKET", requires = "to_region")]
        to_vault: Option<String>,
        /// That deployment's catalog table.
        #[arg(long, value_name = "TABLE", requires = "to_region")]
        to_catalog: Option<String>,
        /// Copy each message as it is instead of encrypting it again: its
        /// keys must be multi-Region, with replicas in --to-region.
        #[arg(long, requires = "to_region", conflicts_with = "to_keys")]
        copy_only: bool,
        /// Run the tasks on this machine instead of S3 Batch Operations.
        #[arg(long)]
        local: bool,
        /// Tasks at once (with --local).
        #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: u16,
        /// Where --local writes its report (the job's CSV shape).
        #[arg(long, default_value = "rekey-report.csv", value_name = "FILE")]
        report: String,
        /// The rekey function (the stack's RekeyFunctionArn output).
        #[arg(long = "function", env = "REKEY_FUNCTION_ARN", value_name = "ARN", required_unless_present_any = ["local", "dry_run"])]
        function_arn: Option<String>,
        /// The role S3 Batch Operations assumes (the stack's RekeyBatchRoleArn output).
        #[arg(long = "batch-role", env = "REKEY_BATCH_ROLE_ARN", value_name = "ARN", required_unless_present_any = ["local", "dry_run"])]
        batch_role: Option<String>,
        /// The job's priority (higher runs first).
        #[arg(long, default_value_t = 10, value_name = "N")]
        priority: i32,
        /// Start the job at once instead of waiting for its confirmation.
        #[arg(long)]
        confirm: bool,
        /// The catalog's DynamoDB table.
        #[arg(long, env = "CATALOG_TABLE", value_name = "TABLE")]
        catalog_table: String,
        /// The vault bucket.
        #[arg(long, env = "VAULT_BUCKET", value_name = "BUCKET")]
        vault_bucket: String,
        /// The organisation in every encryption context (with --local).
        #[arg(long, env = "CALLVAULT_ORG", value_name = "ORG", required_if_eq("local", "true"))]
        org: Option<String>,
        /// RECORDING_KEYS as the functions have it (with --local).
        #[arg(long, env = "RECORDING_KEYS", value_name = "JSON", required_if_eq("local", "true"))]
        recording_keys: Option<String>,
        /// Plaintext bytes per frame of the new messages (with --local).
        #[arg(long, default_value_t = envelope::DEFAULT_FRAME_LENGTH, value_name = "N")]
        frame_length: u32,
    },
    /// List the keys with what each protects; retire a key nothing needs
    ///
    /// Every key the catalog or the deployment knows: recordings and bytes
    /// it protects, oldest and newest, the types configured to use it, its
    /// state and rotation. `keys retire ARN` disables a key and schedules its
    /// deletion (30 days), refusing while anything still depends on it.
    Keys {
        #[command(subcommand)]
        action: Option<KeysAction>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The stack whose functions' settings say which keys are configured
        /// (required).
        #[arg(long, env = "CALLVAULT_STACK", value_name = "STACK", global = true)]
        stack: Option<String>,
        /// The catalog's DynamoDB table (required).
        #[arg(long, env = "CATALOG_TABLE", value_name = "TABLE", global = true)]
        catalog_table: Option<String>,
    },
    /// Put a recording under legal hold, or release it
    ///
    /// Retention and erasure never delete a held recording.
    Hold {
        #[command(subcommand)]
        action: HoldAction,
    },
    /// Erase one recording now, with an evidence record
    ///
    /// Every version, its catalog row and its key usage go. Refused under legal hold and under
    /// compliance-mode Object Lock; under governance mode, unless
    /// --bypass-governance-retention.
    Erase {
        /// The recording, <type>/<id>.
        recording: String,
        /// Why (a data subject request's reference, ...): written into the evidence.
        #[arg(long)]
        reason: String,
        /// Delete past a governance-mode retention: a duty of its own (its URL,
        /// --bypass-url, and its operators' policy); the evidence records it and who asked.
        #[arg(long)]
        bypass_governance_retention: bool,
        /// Resume an erasure that stopped (the id the error printed).
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
        /// The erase duty's Function URL (the stack's RetentionEraseUrl output).
        #[arg(long = "url", env = "RETENTION_ERASE_URL", value_name = "URL")]
        url: Option<String>,
        /// The erase-past-governance duty's Function URL (the stack's
        /// RetentionErasePastGovernanceUrl output), for --bypass-governance-retention.
        #[arg(long = "bypass-url", env = "RETENTION_ERASE_PAST_GOVERNANCE_URL", value_name = "URL")]
        bypass_url: Option<String>,
    },
    /// Judge every key against the rotation policy (exit 1 if any fails)
    ///
    /// Every key that protects recordings or is configured for new ones. Exit status 1
    /// when any key is not compliant. The deployment's settings are read
    /// from --stack (its rotation-audit function), as `keys` does; the
    /// flags below override them.
    Audit {
        /// Most days key material may go unrotated [default: the stack's
        /// MAX_KEY_AGE_DAYS, else 365].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=3650))]
        max_key_age_days: Option<u64>,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The stack whose rotation-audit function's settings say the
        /// catalog, the keys and the org.
        #[arg(long, env = "CALLVAULT_STACK", value_name = "STACK")]
        stack: Option<String>,
        /// The catalog's DynamoDB table [default: the stack's].
        #[arg(long, env = "CATALOG_TABLE", value_name = "TABLE")]
        catalog_table: Option<String>,
        /// RECORDING_KEYS as the functions have it, JSON: {"calls": ["<key ARN>"]}
        /// [default: the stack's].
        #[arg(long, env = "RECORDING_KEYS", value_name = "JSON")]
        recording_keys: Option<String>,
        /// The organisation in every encryption context [default: the stack's].
        #[arg(long, env = "CALLVAULT_ORG", value_name = "ORG")]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Disable the key and schedule its deletion with the 30-day window;
    /// refused while it protects any recording or the deployment is
    /// configured with it (the error says what to run first).
    Retire {
        /// The key ARN.
        key_arn: String,
    },
}

#[derive(Subcommand)]
enum HoldAction {
    /// Put the recording under legal hold.
    Set {
        /// The recording, <type>/<id>.
        recording: String,
        /// Why (a case reference): kept with the hold.
        #[arg(long)]
        reason: String,
        /// The hold duty's Function URL (the stack's RetentionHoldUrl output).
        #[arg(long = "url", env = "RETENTION_HOLD_URL", value_name = "URL")]
        url: String,
    },
    /// Release the recording's legal hold.
    Release {
        /// The recording, <type>/<id>.
        recording: String,
        /// Why it is released.
        #[arg(long)]
        reason: String,
        /// The hold duty's Function URL (the stack's RetentionHoldUrl output).
        #[arg(long = "url", env = "RETENTION_HOLD_URL", value_name = "URL")]
        url: String,
    },
}

// Freed memory keeps no copy of a data key, ours or the SDK's (vault::bootstrap).
vault::wipe_freed_memory!();

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return arguments_refused(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report(CliError::io("cannot start the async runtime", e)),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Encrypt { keys, context, frame_length, input, output } => {
                commands::encrypt(keys, context, frame_length, input, output).await
            }
            Command::Decrypt { context, keys, accounts, partition, any_org, range, input, output } => {
                let trust = commands::Trust { keys, accounts, partition, any_org };
                commands::decrypt(context, trust, range, input, output).await
            }
            Command::Inspect { input } => commands::inspect(input).await,
            Command::Redrive { function, queue, bucket, prefix, dry_run } => {
                let source = match (queue, bucket) {
                    (Some(url), _) => redrive::Source::Queue(url),
                    (None, Some(bucket)) => redrive::Source::Bucket { bucket, prefix },
                    (None, None) => return Err(CliError::usage("give --queue or --bucket")),
                };
                redrive::redrive(function, source, dry_run).await
            }
            Command::Rekey {
                from_key,
                types,
                to_keys,
                dry_run,
                to_region,
                to_vault,
                to_catalog,
                copy_only,
                local,
                workers,
                report,
                function_arn,
                batch_role,
                priority,
                confirm,
                catalog_table,
                vault_bucket,
                org,
                recording_keys,
                frame_length,
            } => {
                let mode = if local {
                    rekey::Mode::Local {
                        workers: usize::from(workers),
                        report,
                        org: org.unwrap_or_default(),
                        recording_keys: recording_keys.unwrap_or_default(),
                        frame_length,
                    }
                } else {
                    rekey::Mode::Batch {
                        function_arn: function_arn.unwrap_or_default(),
                        role_arn: batch_role.unwrap_or_default(),
                        priority,
                        confirmed: confirm,
                    }
                };
                let selection = vault::rekey::Selection { from_key, types };
                let destination = match (to_region, to_vault, to_catalog) {
                    (Some(region), Some(vault_bucket), Some(catalog_table)) => {
                        Some(vault::ports::destinations::Destination { region, vault_bucket, catalog_table })
                    }
                    _ => None,
                };
                rekey::rekey(rekey::Request {
                    selection,
                    to_keys,
                    dry_run,
                    mode,
                    catalog_table,
                    vault_bucket,
                    destination,
                    copy_only,
                })
                .await
            }
            Command::Keys { action, json, stack, catalog_table } => {
                let (Some(stack), Some(catalog_table)) = (stack, catalog_table) else {
                    return Err(CliError::usage(
                        "give --stack (or CALLVAULT_STACK) and --catalog-table (or CATALOG_TABLE)",
                    ));
                };
                match action {
                    None => keys::list(stack, catalog_table, json).await,
                    Some(KeysAction::Retire { key_arn }) => keys::retire(stack, catalog_table, key_arn).await,
                }
            }
            Command::Hold { action: HoldAction::Set { recording, reason, url } } => {
                retention::hold(url, recording, true, reason).await
            }
            Command::Hold { action: HoldAction::Release { recording, reason, url } } => {
                retention::hold(url, recording, false, reason).await
            }
            Command::Erase { recording, reason, bypass_governance_retention, request_id, url, bypass_url } => {
                let url = match (bypass_governance_retention, url, bypass_url) {
                    (false, Some(url), _) | (true, _, Some(url)) => url,
                    (false, None, _) => return Err(CliError::usage(
                        "give the erase duty's Function URL: --url or RETENTION_ERASE_URL (the stack's RetentionEraseUrl output)",
                    )),
                    (true, _, None) => return Err(CliError::usage(
                        "erasing past governance retention is its own duty: give its Function URL with --bypass-url or RETENTION_ERASE_PAST_GOVERNANCE_URL (the stack's RetentionErasePastGovernanceUrl output)",
                    )),
                };
                retention::erase(url, recording, reason, bypass_governance_retention, request_id).await
            }
            Command::Audit { max_key_age_days, json, stack, catalog_table, recording_keys, org } => {
                let given = audit::Given { stack, catalog_table, recording_keys, org, max_key_age_days };
                audit::audit(given, json).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

fn report(e: CliError) -> ExitCode {
    eprintln!("callvault: error[{}]: {}", e.code, e.message);
    ExitCode::from(e.exit_code())
}

/// Help and version are printed as asked (exit 0); a command line clap
/// refuses becomes one `usage` line, like every other error (exit 2).
fn arguments_refused(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => report(CliError::usage(one_line(&e.render().to_string()))),
    }
}

/// Clap's error text as one line: what is wrong, then where the command's
/// help is (`callvault decrypt --help`).
fn one_line(text: &str) -> String {
    let mut what = Vec::new();
    let mut command = String::from("callvault");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(usage) = line.strip_prefix("Usage: ") {
            let words: Vec<&str> = usage.split_whitespace().collect();
            let end = words.iter().position(|w| w.starts_with(['-', '[', '<'])).unwrap_or(words.len());
            command = words[..end].join(" ");
        } else if !line.starts_with("For more information") && !line.starts_with("tip:") {
            what.push(line.strip_prefix("error: ").unwrap_or(line).trim_end_matches('.'));
        }
    }
    format!("{}: see {command} --help", what.join(" "))
}
