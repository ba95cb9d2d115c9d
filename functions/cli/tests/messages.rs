//! What `callvault` says when something is wrong, read as an operator reads
//! it: one line `callvault: error[<code>]: <what happened>: <what to do>`,
//! exit status 2 for a command line that is wrong and 1 for a command that
//! failed. No emulator: AWS is either absent (no credentials, nothing
//! listening) or a loopback stub that refuses every call as AWS would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// The command with an environment that holds no AWS settings at all: no
/// credentials, no profile, no instance metadata.
fn callvault(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = std::env::temp_dir().join("callvault-messages-home");
    std::fs::create_dir_all(&home).unwrap();
    Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .output()
        .expect("callvault runs")
}

/// The one error line, checked for its form, code and exit status.
fn refused(out: &Output, code: &str, status: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(status), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let prefix = format!("callvault: error[{code}]: ");
    assert!(stderr.starts_with(&prefix), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on standard output: {}", String::from_utf8_lossy(&out.stdout));
    stderr
}

fn temp_file(name: &str, bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("callvault-messages-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

/// A loopback endpoint that answers every request with the JSON error
/// `error_type` (HTTP 400), as KMS refuses a call; its URL.
fn refusing_endpoint(error_type: &'static str, message: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = format!(r#"{{"__type":"{error_type}","message":"{message}"}}"#);
            let response = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {error_type}\r\n\
                 x-amzn-RequestId: stub\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = reader.into_inner().write_all(response.as_bytes());
        }
    });
    url
}

fn encrypt_with(env: &[(&str, &str)]) -> Output {
    let input = temp_file("plain", b"a recording");
    let output = format!("{input}.esdk");
    callvault(&["encrypt", "--key", KEY, "--context", "org=acme", &input, &output], env)
}

// Was: error[kms_unavailable]: KMS is unavailable for key ... (cannot reach KMS:
// DispatchFailure { source: ConnectorError { ... CredentialsNotLoaded ... } }): retry later
#[test]
fn missing_credentials_are_named_with_what_to_set() {
    let out = encrypt_with(&[("AWS_REGION", "us-east-1")]);
    let line = refused(&out, "credentials_missing", 1);
    assert!(line.contains("no AWS credentials were found"), "{line}");
    assert!(line.contains("AWS_PROFILE") && line.contains("aws sso login"), "{line}");
    assert!(!line.contains("DispatchFailure") && !line.contains("retry later"), "{line}");
}

#[test]
fn an_unreachable_endpoint_is_named_with_what_to_check() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    let out = encrypt_with(&[
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", &url),
        ("AWS_MAX_ATTEMPTS", "1"),
    ]);
    let line = refused(&out, "endpoint_unreachable", 1);
    assert!(line.contains("cannot connect to KMS") && line.contains("AWS_ENDPOINT_URL"), "{line}");
    assert!(!line.contains("DispatchFailure"), "{line}");
}

#[test]
fn a_refused_call_and_rejected_credentials_each_have_their_code() {
    let env = |url: &str| -> Vec<(&'static str, String)> {
        vec![
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_ENDPOINT_URL", url.to_string()),
        ]
    };
    let denied =
        refusing_endpoint("AccessDeniedException", "User: arn:aws:iam::123456789012:user/op is not authorized");
    let vars = env(&denied);
    let out = encrypt_with(&vars.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    let line = refused(&out, "key_access_denied", 1);
    assert!(line.contains("is not authorized") && line.contains("key policy or IAM role"), "{line}");

    let unknown =
        refusing_endpoint("UnrecognizedClientException", "The security token included in the request is invalid.");
    let vars = env(&unknown);
    let out = encrypt_with(&vars.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    let line = refused(&out, "credentials_rejected", 1);
    assert!(line.contains("did not accept the credentials") && line.contains("refresh them"), "{line}");
}

// Was: error[unsupported]: unsupported message format version 0x..: ... re-encrypt
// version 1 messages with a current AWS Encryption SDK
#[test]
fn inspect_on_something_that_is_not_a_message_says_so() {
    let random = temp_file("random", &[0x27, 0x9c, 0x44, 0x10, 0xfe, 0x00, 0x31, 0x8a].repeat(64));
    let line = refused(&callvault(&["inspect", &random], &[]), "not_a_message", 1);
    assert!(line.contains("is not an AWS Encryption SDK message") && line.contains("0x27"), "{line}");
    assert!(!line.contains("version 1"), "{line}");

    // A short file is read for what it is, not reported as an empty header.
    let v1 = temp_file("v1", &[0x01, 0x00, 0x78]);
    let line = refused(&callvault(&["inspect", &v1], &[]), "unsupported", 1);
    assert!(line.contains("format version 1"), "{line}");
    let empty = temp_file("empty", b"");
    let line = refused(&callvault(&["inspect", &empty], &[]), "integrity", 1);
    assert!(line.contains("ends inside its header"), "{line}");
}

// Was: clap's multi-line text and exit status 2, where the README promised 1
// and one line.
#[test]
fn argument_errors_are_one_usage_line_with_exit_status_2() {
    let line = refused(&callvault(&["encrypt"], &[]), "usage", 2);
    assert!(line.contains("--key <ARN> <INPUT> <OUTPUT>"), "every missing argument at once: {line}");
    assert!(line.trim_end().ends_with("see callvault encrypt --help"), "{line}");
    let line = refused(&callvault(&["decrypt", "--frobnicate", "a", "b"], &[]), "usage", 2);
    assert!(line.contains("'--frobnicate'") && line.trim_end().ends_with("see callvault decrypt --help"), "{line}");
    let line = refused(&callvault(&["bogus"], &[]), "usage", 2);
    assert!(line.contains("'bogus'") && line.trim_end().ends_with("see callvault --help"), "{line}");
}

// Was: error[key_filter_required] alone; --context org=... reported only on the
// next attempt.
#[test]
fn every_problem_with_the_arguments_is_reported_at_once() {
    let line = refused(&callvault(&["decrypt", "in.esdk", "out.wav"], &[]), "usage", 2);
    assert!(line.contains("2 problems with the arguments"), "{line}");
    assert!(line.contains("--context org=<organisation>") && line.contains("--key <ARN>"), "{line}");

    let line = refused(
        &callvault(
            &["decrypt", "--key", "alias/x", "--account", "12", "--context", "org", "--range", "x", "a", "b"],
            &[],
        ),
        "usage",
        2,
    );
    assert!(line.contains("5 problems"), "{line}");
    for part in ["\"org\" is not a pair", "\"x\" is not a byte range", "\"alias/x\" is not a KMS key ARN", "\"12\""] {
        assert!(line.contains(part), "{part}: {line}");
    }
    // Nothing is read and no AWS call is made: the input does not exist and
    // there are no credentials, yet the arguments are what is reported.
    assert!(!line.contains("credentials") && !line.contains("No such file"), "{line}");
}

// Was: --range "10-5": use START-END (inclusive byte offsets) or START-
#[test]
fn a_range_that_ends_before_it_starts_says_so() {
    let args = ["decrypt", "--account", "123456789012", "--context", "org=acme", "--range", "10-5", "a", "b"];
    let line = refused(&callvault(&args, &[]), "usage", 2);
    assert!(line.contains("ends (5) before it starts (10)") && line.contains("5-10"), "{line}");
}

#[test]
fn audit_without_a_stack_names_everything_it_lacks() {
    let line = refused(&callvault(&["audit"], &[("AWS_REGION", "us-east-1")]), "usage", 2);
    assert!(line.contains("3 problems"), "{line}");
    for flag in ["--catalog-table", "--recording-keys", "--org"] {
        assert!(line.contains(flag), "{flag}: {line}");
    }
    assert!(line.contains("--stack"), "{line}");
}

// Was: "Encrypt, decrypt and inspect call recordings" for nine subcommands;
// decrypt's <INPUT> and <OUTPUT> undescribed.
#[test]
fn the_help_says_what_each_command_is_for_and_each_argument_s_forms() {
    let out = callvault(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for command in ["encrypt", "decrypt", "inspect", "redrive", "rekey", "keys", "hold", "erase", "audit"] {
        let line = help.lines().find(|l| l.trim_start().starts_with(&format!("{command} "))).unwrap_or_default();
        let purpose = line.trim_start().trim_start_matches(command).trim();
        assert!(purpose.len() > 20, "{command} has a purpose: {help}");
        assert!(line.len() <= 100, "{command}'s summary fits a terminal: {line}");
    }
    assert!(help.contains("Exit status: 0 done; 1 failed") && help.contains("2 the arguments are wrong"), "{help}");

    let out = callvault(&["decrypt", "--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let described = |arg: &str| {
        let at = help.find(&format!("  {arg}\n")).unwrap_or_else(|| panic!("{arg} listed: {help}"));
        help[at..].lines().nth(1).unwrap_or_default().trim().to_string()
    };
    assert!(described("<INPUT>").contains("s3://bucket/key"), "{help}");
    assert!(described("<OUTPUT>").contains("standard output"), "{help}");
    assert!(help.contains("START-END") && help.contains("START-"), "{help}");
}
