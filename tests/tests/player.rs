//! The supervisors' player end to end, in real headless Chromium (Debian's,
//! driven by Playwright: tests/browser/player.py): the playback function
//! under cargo lambda watch (its local Function URL is the player's URL),
//! the local AWS, and the local OpenID Connect issuer. A QA person signs in
//! by filling the issuer's login form, sees only `calls`, plays the newest,
//! seeks to 75% and 19 times more, is refused a `screens` recording, and
//! after the key is disabled and the cache time has passed, is told whom to
//! ask. The function's own audit lines and the local KMS's call counter say
//! what it cost and who it was for.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::ingest::Stack;
use e2e::lambda::{free_port, Watch};
use e2e::oidc::{LocalIssuer, PLAYER_CLIENT, PLAYER_SECRET};
use e2e::*;
use envelope::{FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD};
use serde_json::Value;

const FRAME: u64 = 4096;
/// How long the function keeps an opened message: the seeks fit in it,
/// and the test waits it out after disabling the key.
const CACHE_SECONDS: u64 = 30;

/// A tone as a WAV file (8 kHz, 16-bit mono): real audio Chromium plays.
fn wav(seconds: u32, tone: f64) -> Vec<u8> {
    let rate = 8000u32;
    let samples = rate * seconds;
    let mut out = Vec::with_capacity(44 + 2 * samples as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + 2 * samples).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(2 * samples).to_le_bytes());
    for i in 0..samples {
        let t = f64::from(i) / f64::from(rate);
        let v = (9000.0 * (2.0 * std::f64::consts::PI * tone * t).sin()) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Ciphertext bytes of the frames covering plaintext `start..=end` of a
/// `len`-byte recording: what reading only the covering frames costs.
fn covering(start: u64, end: u64, len: u64) -> u64 {
    let last_frame = len / FRAME; // the final frame's index
    (start / FRAME..=end / FRAME)
        .map(|i| if i == last_frame { len - i * FRAME + FINAL_FRAME_OVERHEAD } else { FRAME + REGULAR_FRAME_OVERHEAD })
        .sum()
}

/// The audit lines the function printed.
fn audits(watch: &Watch) -> Vec<Value> {
    watch
        .log_text()
        .lines()
        .filter(|l| l.contains("\"audit\":\"playback\""))
        .filter_map(|l| serde_json::from_str(&l[l.find('{').unwrap_or(0)..]).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_qa_person_signs_in_plays_seeks_and_is_refused_what_they_may_not_play_in_real_chromium() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let mut stack = Stack::new(aws, &[("calls", &[&key]), ("screens", &[&key])]).await;
    stack.frame_length = Some(FRAME as u32);
    // Two minutes: long enough that Chromium has not buffered 75% when
    // the person seeks there, so the seek is a Range request of its own.
    let call = wav(120, 440.0);
    stack.encrypt("calls/2026-11-27/agent-7-older.wav", &wav(5, 660.0), "audio/wav").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a later encrypted_at: the newest
    stack.encrypt("calls/2026-11-28/agent-7-0001.wav", &call, "audio/wav").await;
    stack.encrypt("screens/2026-11-28/agent-7-0001.wav", &wav(3, 550.0), "audio/wav").await;
    let len = call.len() as u64;

    // The player's URL is its front's, at the root of http://localhost (a
    // secure context, as the distribution's https root is: the session
    // cookie is __Host-); the front forwards to the local Function URL. The
    // issuer knows it as the player's redirect.
    let port = free_port();
    let secrets = aws_sdk_secretsmanager::Client::new(&aws.config(REGION).await);
    // The front's secret, as provisioned from the template (PlayerFrontSecret):
    // the front sends it, the function reads it at start.
    let mut env = aws.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    env.extend(e2e::playback::env(&stack));
    let front_arn =
        env.iter().find(|(k, _)| *k == "PLAYER_FRONT_SECRET_ARN").map(|(_, v)| v.clone()).expect("provisioned");
    let front_secret = secrets
        .get_secret_value()
        .secret_id(&front_arn)
        .send()
        .await
        .expect("the front's secret")
        .secret_string
        .unwrap();
    let function_url = format!("http://127.0.0.1:{port}/lambda-url/playback");
    let front = e2e::playback::Front::start(&function_url, Some(&front_secret));
    let player_url = front.url.clone();
    let issuer = LocalIssuer::start(&[&format!("{player_url}/auth/callback")]);
    let secret_arn = secrets
        .create_secret()
        .name(format!("callvault-player-{}", std::process::id()))
        .secret_string(format!("{{\"client_secret\": \"{PLAYER_SECRET}\"}}"))
        .send()
        .await
        .expect("CreateSecret")
        .arn
        .expect("an ARN");
    let ttl = CACHE_SECONDS.to_string();
    for (name, value) in [
        ("OIDC_ISSUER", issuer.url.as_str()),
        ("OIDC_CLIENT_ID", PLAYER_CLIENT),
        ("OIDC_CLIENT_SECRET_ARN", secret_arn.as_str()),
        ("PLAYER_URL", player_url.as_str()),
        ("PLAYBACK_ACCESS", r#"{"qa": ["calls"], "supervisors": ["calls", "screens"]}"#),
        ("KEY_CACHE_TTL_SECONDS", ttl.as_str()),
        ("MAX_RESPONSE_BYTES", "65536"),
    ] {
        env.retain(|(k, _)| *k != name);
        env.push((name, value.to_string()));
    }
    let watch = Watch::start_on(port, "playback", &env);
    // The function answers the page once it has read its secret.
    let started = Instant::now();
    loop {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{player_url}/")])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout) == "200" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the player did not answer:\n{}", watch.log_text());
        std::thread::sleep(Duration::from_millis(250));
    }

    let out_dir = root().join("target/player-test");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let python = root().join("infra/local/.venv/browser/bin/python");
    assert!(python.exists(), "Playwright is not installed: run infra/local/setup.sh");
    let decrypts = || aws.kms_calls_for(&key).get("Decrypt").copied().unwrap_or(0);
    let before = decrypts();
    let mut browser = Command::new(&python)
        .arg(root().join("tests/browser/player.py"))
        .args(["--url", &format!("{player_url}/"), "--user", "anna.qa", "--password", "anna-local"])
        .args(["--refused", "screens/2026-11-28/agent-7-0001.wav", "--out", out_dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the browser test (tests/browser/player.py)");
    let mut stdin = browser.stdin.take().unwrap();
    let stdout = BufReader::new(browser.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut after_seeks = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        lines.push(line.clone());
        if line == "STEP refused" {
            after_seeks = Some(decrypts());
        }
        if line == "WAITING disable-key" {
            // Disable the key; wait out the cache time.
            aws.kms().await.disable_key().key_id(&key).send().await.expect("DisableKey");
            tokio::time::sleep(Duration::from_secs(CACHE_SECONDS + 1)).await;
            writeln!(stdin, "disabled").unwrap();
            stdin.flush().unwrap();
        }
    }
    let status = browser.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut browser.stderr.take().unwrap(), &mut stderr).unwrap();
    let result: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("result.json")).unwrap_or_default()).unwrap_or(Value::Null);
    assert!(
        status.success() && lines.last().map(String::as_str) == Some("STEP done"),
        "the browser test failed: {}\n{stderr}\nresult: {result:#}\n--- function log ---\n{}",
        lines.join("\n"),
        watch.log_text()
    );

    // The browser kept the session under its real name and path: a
    // __Host- cookie (Secure, Path=/), HttpOnly, SameSite=Lax.
    let cookies = result["cookies"].as_array().expect("the browser's cookies");
    let session = cookies
        .iter()
        .find(|c| c["name"] == ::playback::auth::session::SESSION_COOKIE)
        .unwrap_or_else(|| panic!("no __Host- session cookie: {cookies:#?}"));
    assert_eq!((session["path"].as_str(), session["httpOnly"].as_bool()), (Some("/"), Some(true)), "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");
    assert_eq!(session["secure"], true, "{session}");

    // Seeking 20 times cost one KMS Decrypt (the first open; the cache
    // did the rest).
    assert_eq!(after_seeks.expect("the browser reached the refusal") - before, 1, "{}", watch.log_text());
    // The audio element's requests: ranges, each answered 206.
    let media: Vec<&Value> = result["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resource"] == "media" && r["url"].as_str().unwrap().contains("/recordings/calls/"))
        .collect();
    assert!(media.len() >= 2, "{media:#?}");
    // Nothing fetched a whole recording: every request for audio was a range
    // (the page's probe is `bytes=0-0`).
    let whole: Vec<&Value> = result["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["url"].as_str().unwrap().contains("/recordings/") && !r["url"].as_str().unwrap().ends_with("/info")
        })
        .filter(|r| r["range"].is_null())
        .collect();
    assert!(whole.is_empty(), "requests for a whole recording: {whole:#?}");
    for r in &media {
        assert!(r["range"].as_str().is_some_and(|r| r.starts_with("bytes=")), "a Range request: {r}");
        assert_eq!(r["status"], 206, "{r}");
    }
    // The function's audit: every range request names the person and the
    // group that granted it, from the session (never from the IAM context).
    let records = audits(&watch);
    let audio: Vec<&Value> =
        records.iter().filter(|a| a["route"] == "audio" && a["phase"] == "end" && a["status"] == 206).collect();
    assert!(audio.len() >= media.len(), "{} audit records for {} media requests", audio.len(), media.len());
    for a in &audio {
        assert_eq!((a["subject"].as_str(), a["auth"].as_str()), (Some("anna.qa"), Some("session")), "{a}");
        assert_eq!(a["groups"], serde_json::json!(["qa"]), "{a}");
        assert_eq!(a["username"], "anna.qa");
        // Through the front (its secret beside CloudFront-Viewer-Address):
        // the viewer's address, and the edge's apart.
        assert_eq!((a["via"].as_str(), a["source_ip"].as_str()), (Some("front"), Some("127.0.0.1")), "{a}");
        assert!(a["edge_ip"].is_string(), "{a}");
    }
    // A tool calling the Function URL directly chooses no address of its
    // own: its CloudFront-Viewer-Address (and a guessed front header) is
    // ignored, and the request's own source address recorded. (Refused
    // before routing: its line is the one new 401.)
    let refusals = || -> Vec<Value> { audits(&watch).into_iter().filter(|a| a["status"] == 401).collect() };
    let before_direct = refusals().len();
    let direct = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "CloudFront-Viewer-Address: 203.0.113.9:4444"])
        .args(["-H", "X-Callvault-Front: a-guess", &format!("{function_url}/api/me")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&direct.stdout), "401", "no token, no session");
    // Its audit line may follow the answer by a moment.
    let started = Instant::now();
    let after = loop {
        let found = refusals();
        if found.len() > before_direct || started.elapsed() > Duration::from_secs(10) {
            break found;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(after.len(), before_direct + 1, "the direct call is audited once:\n{}", watch.log_text());
    let a = &after[before_direct];
    assert_eq!((a["via"].as_str(), a["code"].as_str()), (Some("direct"), Some("not_signed_in")), "{a}");
    assert_eq!(a["source_ip"], "127.0.0.1", "{a}");
    assert!(a["edge_ip"].is_null(), "{a}");
    // The seek to 75%: a Range request of the block that holds it
    // (Chromium asks for 64 KiB-aligned blocks; the buffering before it had
    // not come near), and S3 read only the frames covering what was served.
    let at_75 = (len as f64 * 0.75) as u64;
    let seek = audio
        .iter()
        .find(|a| {
            a["range_served"]
                .as_str()
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|s| s <= at_75 && at_75 < s + 65536)
        })
        .unwrap_or_else(|| panic!("no range request at 75% ({at_75}): {audio:#?}"));
    let served = seek["range_served"].as_str().unwrap();
    let (a, rest) = served.split_once('-').unwrap();
    let b = rest.split('/').next().unwrap();
    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    assert_eq!(seek["s3_bytes"].as_u64(), Some(covering(a, b, len)), "{seek}");
    assert_eq!(seek["key_source"], "cache");
    assert!(covering(a, b, len) <= 65536 + 2 * (FRAME + REGULAR_FRAME_OVERHEAD));
    // The refusal and the key's message were answered with their codes.
    assert!(records.iter().any(|a| a["code"] == "not_permitted" && a["subject"] == "anna.qa"));
    assert!(records.iter().any(|a| a["code"] == "key_disabled" && a["subject"] == "anna.qa"));
    // The screenshots, for a person to look at.
    for name in [
        "1-identity-provider-login",
        "2-signed-in-list",
        "3-playing-from-75-percent",
        "4-not-permitted",
        "5-key-disabled",
        "6-phone-list",
    ] {
        let png = out_dir.join(format!("{name}.png"));
        assert!(std::fs::metadata(&png).map(|m| m.len() > 1000).unwrap_or(false), "{}", png.display());
    }
    println!("screenshots and result.json in {}", out_dir.display());
}
