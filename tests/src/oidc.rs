//! The local OpenID Connect issuer (`infra/local/oidc_issuer.py`) on
//! 127.0.0.1, started for a test and stopped with it: keys generated at
//! start, users and groups from `infra/local/oidc-users.json`. It fails
//! loudly when it cannot start.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::root;

/// The player's client in oidc-users.json.
pub const PLAYER_CLIENT: &str = "callvault-player";
pub const PLAYER_SECRET: &str = "local-player-secret-not-for-production";
/// The tools' client (client credentials; group `supervisors`).
pub const TOOLS_CLIENT: &str = "callvault-tools";
pub const TOOLS_SECRET: &str = "local-tools-secret-not-for-production";

/// A running issuer, stopped on drop.
pub struct LocalIssuer {
    pub url: String,
    child: Child,
}

impl LocalIssuer {
    /// Starts the issuer with `redirect_uris` registered for the player.
    pub fn start(redirect_uris: &[&str]) -> LocalIssuer {
        crate::setup_local_tools();
        let python = root().join("infra/local/.venv/moto/bin/python");
        let mut cmd = Command::new(&python);
        cmd.arg(root().join("infra/local/oidc_issuer.py"))
            .arg("--users")
            .arg(root().join("infra/local/oidc-users.json"))
            .arg("--exit-on-stdin-eof");
        for uri in redirect_uris {
            cmd.args(["--redirect-uri", uri]);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap_or_else(|e| {
                panic!("cannot start the local OpenID Connect issuer with {}: {e}", python.display())
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the issuer's READY line");
        let url = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the local OpenID Connect issuer did not start: {line:?}"))
            .trim()
            .to_string();
        LocalIssuer { url, child }
    }

    /// A client-credentials access token of `client` (what a tool sends).
    pub fn client_credentials(&self, client: &str, secret: &str) -> String {
        let out = Command::new("curl")
            .args(["-sf", "-X", "POST", "-u", &format!("{client}:{secret}"), "-d", "grant_type=client_credentials"])
            .arg(format!("{}/token", self.url))
            .output()
            .expect("curl");
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("the issuer's token endpoint answered no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
        });
        answer["access_token"].as_str().expect("an access token").to_string()
    }
}

impl Drop for LocalIssuer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
