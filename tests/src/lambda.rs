//! `cargo lambda watch` and `cargo lambda invoke` (cargo-lambda from PyPI,
//! installed by infra/local/setup.sh): a function run through the real
//! Lambda runtime API on loopback, against the local AWS.

use std::io::Write;
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

/// A running `cargo lambda watch`, stopped (with its function) on drop.
pub struct Watch {
    pub port: u16,
    child: Child,
    pub log: PathBuf,
}

impl Watch {
    /// Builds `package` first (so watch's own build is a no-op and the
    /// first invoke does not time out compiling), then starts watch on a
    /// free loopback port with `env` for the function. Panics, with the
    /// log, when it does not listen within 60 s.
    pub fn start(package: &str, env: &[(&str, String)]) -> Watch {
        let path = path_with_cargo_lambda();
        // Built the way watch runs it (`cargo run --package`), so that the
        // build watch starts finds everything done.
        let status = Command::new(cargo())
            .args(["build", "--quiet", "--package", package, "--bin", package])
            .current_dir(root())
            .status()
            .expect("cargo build");
        assert!(status.success(), "cargo build --package {package} failed");
        let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let dir = std::env::temp_dir().join(format!("callvault-watch-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // The function's environment, as an env file: values are JSON with
        // commas and quotes, which --env-var would split.
        let env_file = dir.join("function.env");
        let mut f = std::fs::File::create(&env_file).expect("env file");
        for (k, v) in env {
            assert!(!v.contains('\''), "{k} cannot be single-quoted");
            writeln!(f, "{k}='{v}'").expect("write env file");
        }
        let log = dir.join("watch.log");
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(cargo());
        cmd.args(["lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .arg("--env-file")
            .arg(&env_file)
            .args(["--package", package])
            .current_dir(root())
            .env("PATH", &path)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("cannot start cargo lambda watch");
        let watch = Watch { port, child, log };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "cargo lambda watch did not listen on 127.0.0.1:{port} within 60 s:\n{}",
                watch.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        watch
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
        // The whole process group: watch, and the function it started.
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}
