//! The local AWS test harness: starts the moto launcher of `infra/local` on
//! 127.0.0.1 (installing it first if needed), and helps tests use it and the
//! official AWS Encryption SDK peers. It fails loudly when anything cannot
//! start: a test that needs the local AWS never silently skips.

pub mod guardian;
pub mod ingest;
pub mod lambda;
pub mod oidc;
pub mod playback;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The region the local AWS is used in.
pub const REGION: &str = "us-east-1";
/// A second region, for disaster-recovery keys.
pub const DR_REGION: &str = "us-west-2";
/// The local AWS's account: its keys are the ones `callvault decrypt
/// --account` trusts in the tests.
pub const ACCOUNT: &str = "123456789012";

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn venv(name: &str) -> PathBuf {
    root().join("infra/local/.venv").join(name)
}

/// Installs the local AWS, the ESDK peers and cargo-lambda (idempotent,
/// quick when done).
pub fn setup_local_tools() {
    setup()
}

fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let status = Command::new("bash")
            .arg(root().join("infra/local/setup.sh"))
            .status()
            .expect("cannot run infra/local/setup.sh");
        assert!(status.success(), "infra/local/setup.sh failed: the local AWS cannot be installed");
    });
}

/// A running local AWS.
pub struct LocalAws {
    pub endpoint: String,
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

impl LocalAws {
    /// Starts a new local AWS on a free loopback port; panics, with the
    /// launcher's output, when it does not come up within 60 s.
    pub fn start() -> LocalAws {
        setup();
        let python = venv("moto").join("bin/python");
        let mut child = Command::new(&python)
            .arg(root().join("infra/local/moto_launcher.py"))
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the local AWS ({}): {e}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the launcher never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!("the local AWS did not start (no READY line within 60 s: {other:?}); see its stderr above");
            }
        };
        let endpoint = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("unexpected first line from the local AWS: {line}"))
            .trim()
            .to_string();
        assert!(endpoint.starts_with("http://127.0.0.1:"), "the local AWS must listen on loopback: {endpoint}");
        let stdin = child.stdin.take().expect("piped stdin");
        LocalAws { endpoint, _child: Mutex::new(child), _stdin: Mutex::new(stdin) }
    }

    /// One local AWS shared by every test of this process; it stops when the
    /// process ends (the launcher exits when its standard input closes).
    pub fn shared() -> &'static LocalAws {
        static SHARED: OnceLock<LocalAws> = OnceLock::new();
        SHARED.get_or_init(LocalAws::start)
    }

    /// The environment that points the AWS SDKs and CLIs at it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// An SDK configuration for the local AWS in `region`.
    pub async fn config(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_kms::config::Credentials::new("testing", "testing", None, None, "local"))
            .load()
            .await
    }

    /// Creates a KMS key (`SYMMETRIC_DEFAULT`, `RSA_4096`, ...) in `region`;
    /// returns its ARN.
    pub async fn create_key(&self, spec: &str, region: &str) -> String {
        let kms = aws_sdk_kms::Client::new(&self.config(region).await);
        let out = kms
            .create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::from(spec))
            .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
            .send()
            .await
            .expect("CreateKey on the local AWS");
        out.key_metadata.and_then(|m| m.arn).expect("a key ARN")
    }

    /// A KMS client in the main region.
    pub async fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config(REGION).await)
    }

    /// An S3 client (path style) in the main region.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.config(REGION).await).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A DynamoDB client in the main region.
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config(REGION).await)
    }

    /// An SQS client in the main region.
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config(REGION).await)
    }

    /// KMS calls counted by the launcher for one key (as sent: the ARN), by
    /// operation.
    pub fn kms_calls_for(&self, key: &str) -> HashMap<String, u64> {
        let out = Command::new("curl")
            .args(["-sf", &format!("{}/_callvault/kms-calls/by-key", self.endpoint)])
            .output()
            .expect("curl");
        let mut all: HashMap<String, HashMap<String, u64>> =
            serde_json::from_slice(&out.stdout).expect("kms-calls JSON");
        all.remove(key).unwrap_or_default()
    }

    /// Adds a fault rule to the launcher (see infra/local/local_aws/faults.py,
    /// patch 6): matching requests fail with the given status and code.
    pub fn inject_fault(&self, rule: serde_json::Value) {
        let out = Command::new("curl")
            .args(["-sf", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary"])
            .arg(rule.to_string())
            .arg(format!("{}/_callvault/faults", self.endpoint))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "the launcher refused the fault rule {rule}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        let out = Command::new("curl")
            .args(["-sf", "-X", "DELETE", &format!("{}/_callvault/faults", self.endpoint)])
            .output()
            .expect("curl");
        assert!(out.status.success(), "could not clear the fault rules");
    }

    /// KMS calls counted by the launcher, by operation.
    pub fn kms_calls(&self) -> HashMap<String, u64> {
        let out = Command::new("curl")
            .args(["-sf", &format!("{}/_callvault/kms-calls", self.endpoint)])
            .output()
            .expect("curl");
        serde_json::from_slice(&out.stdout).expect("kms-calls JSON")
    }

    /// Runs `program` with the local AWS environment.
    pub fn run(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args).envs(self.env()).stdin(Stdio::null());
        cmd.output().expect("cannot run command")
    }

    /// Runs the official `aws-encryption-cli`.
    pub fn esdk_cli(&self, args: &[&str]) -> Output {
        setup();
        self.run(venv("esdk-cli").join("bin/aws-encryption-cli"), args)
    }

    /// Runs the Python AWS Encryption SDK 4.x peer (`tests/peers/esdk4_peer.py`).
    pub fn esdk4(&self, args: &[&str]) -> Output {
        setup();
        let script = root().join("tests/peers/esdk4_peer.py");
        let mut all = vec![script.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        self.run(venv("esdk4").join("bin/python"), &all)
    }

    /// Runs `callvault`.
    pub fn callvault(&self, args: &[&str]) -> Output {
        self.run(callvault_bin(), args)
    }
}

/// How the tests build the workspace's binaries: the same command as `make
/// build` and `make unit`, so that it resolves the same features and finds
/// everything already built (a `-p <one package>` build resolves features
/// for that package alone and recompiles much of the SDK).
pub const WORKSPACE_BINS: &[&str] = &["build", "--quiet", "--workspace", "--bins"];

/// Starts a local stand-in (`what`) that prints `banner...` on its first
/// line once it listens: its process, or a loud failure with what it said.
pub fn spawn_announced(cmd: &mut Command, banner: &str, what: &str) -> Child {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("its stdout")).read_line(&mut line);
    assert!(line.starts_with(banner), "{what} did not start: {line:?}");
    child
}

/// A binary of this workspace (`callvault`, or a Lambda's), built with the
/// others if needed.
pub fn workspace_bin(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status =
            Command::new(cargo).args(WORKSPACE_BINS).current_dir(root()).status().expect("cannot run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
        // target/<profile>/deps/<test> -> target/<profile>
        let exe = std::env::current_exe().expect("current exe");
        exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
    });
    let bin = dir.join(name);
    assert!(bin.exists(), "no {name} binary at {}", bin.display());
    bin
}

/// The `callvault` binary of this workspace, built if needed.
pub fn callvault_bin() -> PathBuf {
    workspace_bin("callvault")
}

/// Asserts a command succeeded, showing its output otherwise.
#[track_caller]
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("callvault-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic test audio-like bytes.
pub fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed).collect()
}
