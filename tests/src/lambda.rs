//! `cargo lambda watch` and `cargo lambda invoke` (cargo-lambda from PyPI,
//! installed by infra/local/setup.sh): a function run through the real
//! Lambda runtime API on loopback, against the local AWS.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{root, setup_local_tools};

/// PATH with cargo-lambda's bin dir first, so `cargo lambda` finds it.
pub fn path_with_cargo_lambda() -> String {
    setup_local_tools();
    let bin = root().join("infra/local/.venv/cargo-lambda/bin");
    assert!(bin.join("cargo-lambda").exists(), "cargo-lambda is not installed at {}", bin.display());
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

/// A running `cargo lambda watch` (the Lambda runtime and invoke APIs) and
/// the function's binary polling it, both stopped on drop.
pub struct Watch {
    pub port: u16,
    watch: Child,
    functions: Vec<Child>,
    pub log: PathBuf,
}

impl Watch {
    /// Starts watch with `--only-lambda-apis` on a free loopback port, then
    /// the workspace's own build of `package`'s binary (the one `make`
    /// builds, so nothing is compiled again with another feature set) with
    /// `env` and the runtime API variables Lambda sets. Panics, with the
    /// log, when watch does not listen within 60 s.
    pub fn start(package: &str, env: &[(&str, String)]) -> Watch {
        Self::start_on(free_port(), package, env)
    }

    /// [`Watch::start`] on `port` (a function whose settings name its own
    /// URL, as the player's redirect does, needs the port first).
    pub fn start_on(port: u16, package: &str, env: &[(&str, String)]) -> Watch {
        let path = path_with_cargo_lambda();
        let dir = std::env::temp_dir().join(format!("callvault-watch-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("watch.log");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let mut cmd = Command::new(cargo());
        cmd.args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .current_dir(root())
            .env("PATH", &path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out.try_clone().expect("log"));
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("cannot start cargo lambda watch");
        let mut watch = Watch { port, watch: child, functions: Vec::new(), log };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "cargo lambda watch did not listen on 127.0.0.1:{port} within 60 s:\n{}",
                watch.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        watch.start_function(package, env);
        watch
    }

    fn start_function(&mut self, package: &str, env: &[(&str, String)]) {
        let bin = crate::workspace_bin(package);
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let function = Command::new(&bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_LAMBDA_FUNCTION_NAME", package)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{}/.rt/{package}", self.port))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.functions.push(function);
    }

    /// What watch and the function printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `cargo lambda invoke <function> --data-file <file>`; the output is
    /// the function's answer (or its error).
    pub fn invoke(&self, function: &str, data_file: &str) -> Output {
        self.invoke_command(function, data_file).output().expect("cannot run cargo lambda invoke")
    }

    /// Starts an invoke without waiting for it: a function that dies at
    /// start never answers, and watch keeps the invoke waiting.
    pub fn invoke_in_background(&self, function: &str, data_file: &str) -> Child {
        self.invoke_command(function, data_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run cargo lambda invoke")
    }

    fn invoke_command(&self, function: &str, data_file: &str) -> Command {
        let mut cmd = Command::new(cargo());
        cmd.args(["lambda", "invoke", function, "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .args(["--data-file", data_file, "--output-format", "json"])
            .current_dir(root())
            .env("PATH", path_with_cargo_lambda())
            .stdin(Stdio::null());
        cmd
    }

    /// Waits up to `timeout` for the log to contain every one of `needles`.
    pub fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let log = self.log_text();
            if needles.iter().all(|n| log.contains(n)) || started.elapsed() > timeout {
                return log;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for mut function in self.functions.drain(..) {
            let _ = function.kill();
            let _ = function.wait();
        }
        // The whole process group of watch.
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", self.watch.id())]).status();
        let _ = self.watch.wait();
    }
}

/// IAM-authenticated Function URLs in front of a [`Watch`]
/// (`infra/local/function_url.py`): each request's SigV4 signature checked,
/// and the function handed the caller its access key names, as Lambda does
/// for a URL with `AuthType: AWS_IAM`. Stopped on drop.
pub struct FunctionUrls {
    base: String,
    child: Child,
}

/// A principal a test plays: its credentials, and the ARN AWS would
/// authenticate them as.
#[derive(Clone, Debug)]
pub struct Principal {
    pub access_key: String,
    pub secret: String,
    pub arn: String,
}

impl Principal {
    /// A principal named `who` in role `role` of the local account.
    pub fn new(role: &str, who: &str) -> Principal {
        let id: String = format!("{role}{who}").bytes().map(|b| (b'A' + b % 26) as char).take(12).collect();
        Principal {
            access_key: format!("AKIALOCAL{id}"),
            secret: format!("local-secret-of-{role}-{who}"),
            arn: format!("arn:aws:sts::123456789012:assumed-role/{role}/{who}"),
        }
    }

    /// Its credentials as the SDK reads them from the environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("AWS_ACCESS_KEY_ID", self.access_key.clone()), ("AWS_SECRET_ACCESS_KEY", self.secret.clone())]
    }
}

impl FunctionUrls {
    /// Starts the URLs, each function (a name of template.yaml's) before
    /// the binary `package` on its own watch (cargo lambda invokes by
    /// binary), for these principals; fails loudly when it cannot.
    pub fn start(functions: &[(&str, &str, &Watch)], region: &str, principals: &[&Principal]) -> FunctionUrls {
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(crate::root().join("infra/local/function_url.py")).args([
            "--port",
            &port.to_string(),
            "--region",
            region,
        ]);
        for (name, package, watch) in functions {
            cmd.arg("--route").arg(format!("{name}=http://127.0.0.1:{}/{package}", watch.port));
        }
        for p in principals {
            cmd.arg("--caller").arg(format!("{}:{}={}", p.access_key, p.secret, p.arn));
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&functions[0].2.log).expect("log file");
        cmd.stderr(log);
        let child = crate::spawn_announced(
            &mut cmd,
            "function urls: ",
            "the local function URLs (infra/local/function_url.py)",
        );
        FunctionUrls { base: format!("http://127.0.0.1:{port}"), child }
    }

    /// The URL of `function`.
    pub fn url(&self, function: &str) -> String {
        format!("{}/{function}/", self.base)
    }
}

impl Drop for FunctionUrls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
