//! The subcommands.

use std::io::{Read, Write};
use std::ops::Range;

use envelope::{
    BodyLayout, EncryptingWriter, EncryptionContext, Header, Limits, PendingMessage, RangeReader,
    FINAL_FRAME_PREFIX_LEN,
};
use tokio::runtime::Handle;
use vault::arn::KmsArn;
use vault::aws::{AwsKms, S3Objects};
use vault::flow::{self, FlowError};
use vault::keyring::{self, UnwrapPolicy};

use crate::io::{open_source, Place, Progress, Sink};
use crate::CliError;

struct Aws {
    kms: AwsKms,
    s3: S3Objects,
    region: String,
}

async fn aws() -> Result<Aws, CliError> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = config.region().map(|r| r.to_string()).ok_or_else(|| CliError {
        code: "config",
        message: "no AWS region: set AWS_REGION (or a profile region)".into(),
    })?;
    Ok(Aws { kms: AwsKms::new(&config), s3: S3Objects::from_config(&config), region })
}

fn parse_context(pairs: &[String], problems: &mut Problems) -> EncryptionContext {
    let mut ctx = EncryptionContext::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            problems.push(CliError::usage(format!("--context {p:?} is not a pair: give KEY=VALUE, e.g. org=acme")));
            continue;
        };
        if ctx.get(k).is_some() {
            problems.push(CliError::usage(format!("--context {k} is given twice: give each key once")));
            continue;
        }
        ctx.insert(k, v);
    }
    ctx
}

/// Parses `START-END` (inclusive) or `START-` into an exclusive range.
fn parse_range(s: &str) -> Result<(u64, Option<u64>), CliError> {
    let forms = "give START-END (inclusive byte offsets of the plaintext, e.g. 0-1023) or START- (to the end)";
    let bad = || CliError::usage(format!("--range {s:?} is not a byte range: {forms}"));
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    if b.trim().is_empty() {
        return Ok((start, None));
    }
    let end: u64 = b.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(CliError::usage(format!(
            "--range {s:?} ends ({end}) before it starts ({start}): give the smaller offset first, e.g. {end}-{start}"
        )));
    }
    Ok((start, Some(end.saturating_add(1))))
}

/// Every problem with a command's arguments, reported together: one line,
/// before anything is read or any AWS call is made.
#[derive(Default)]
pub struct Problems(Vec<CliError>);

impl Problems {
    pub fn push(&mut self, e: CliError) {
        self.0.push(e);
    }

    /// The value, or nothing with the problem kept.
    pub fn take<T>(&mut self, r: Result<T, CliError>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }

    /// Ok when there is none; one problem as it is; several as one `usage`
    /// error that lists them all.
    pub fn finish(mut self) -> Result<(), CliError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.remove(0)),
            n => Err(CliError::usage(format!(
                "{n} problems with the arguments: {}",
                self.0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ")
            ))),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, CliError> + Send + 'static) -> Result<T, CliError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CliError { code: "internal", message: format!("worker failed: {e}") })?
}

/// The most bytes a header can take: all a header read needs to fetch.
fn header_limit() -> u64 {
    Limits::default().max_header_len as u64
}

fn io_err(e: std::io::Error) -> CliError {
    FlowError::from_io(e).into()
}

pub async fn encrypt(
    keys: Vec<String>,
    context: Vec<String>,
    frame_length: u32,
    input: String,
    output: String,
) -> Result<(), CliError> {
    let mut problems = Problems::default();
    let (input, output) = (problems.take(Place::parse(&input)), problems.take(Place::parse(&output)));
    let context = parse_context(&context, &mut problems);
    problems.finish()?;
    let (input, output) = input.zip(output).ok_or_else(|| CliError::usage("INPUT or OUTPUT is not a place"))?;
    let aws = aws().await?;
    let wrapping = keyring::resolve_wrapping_keys(&aws.kms, &keys, &aws.region).await?;
    let encryptor = flow::begin_encryption(&aws.kms, &wrapping, context, frame_length).await?.encryptor;
    let handle = Handle::current();
    blocking(move || {
        let source = open_source(&handle, &aws.s3, &input, 0, None)?;
        let sink = Sink::open(&handle, &aws.s3, &output, false)?;
        let mut writer = EncryptingWriter::new(sink, encryptor).map_err(io_err)?;
        let mut reader = Progress::new(source.reader, source.len, "encrypted");
        std::io::copy(&mut reader, &mut writer).map_err(io_err)?;
        let sink = writer.finish().map_err(io_err)?;
        reader.finish();
        sink.commit()
    })
    .await
}

/// Which keys `decrypt` may call, and whether the message must name an org.
pub struct Trust {
    pub keys: Vec<String>,
    pub accounts: Vec<String>,
    pub partition: String,
    pub any_org: bool,
}

impl Trust {
    /// What is wrong with the keys and accounts named, added to `problems`.
    fn check(&self, problems: &mut Problems) {
        if self.keys.is_empty() && self.accounts.is_empty() {
            problems.push(CliError {
                code: "key_filter_required",
                message: "no key is trusted: decrypt calls KMS only for keys you trust, and a message's header is \
                          not trusted until it authenticates: name the key (--key <ARN>) or your accounts \
                          (--account <ACCOUNT_ID>)"
                    .into(),
            });
        }
        for key in &self.keys {
            if !KmsArn::parse(key).is_some_and(|a| a.is_key()) {
                problems.push(CliError::usage(format!(
                    "--key {key:?} is not a KMS key ARN: give arn:aws:kms:<region>:<account>:key/<id>"
                )));
            }
        }
        for account in &self.accounts {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(CliError::usage(format!(
                    "--account {account:?} is not an AWS account id: give its 12 digits"
                )));
            }
        }
    }

    /// The unwrap policy (the keys and accounts were checked).
    fn policy(self, region: &str) -> UnwrapPolicy {
        UnwrapPolicy {
            region: region.to_string(),
            allowed_keys: (!self.keys.is_empty()).then_some(self.keys),
            allowed_accounts: (!self.accounts.is_empty()).then_some((self.partition, self.accounts)),
            allow_other_regions: true,
        }
    }
}

pub async fn decrypt(
    context: Vec<String>,
    trust: Trust,
    range: Option<String>,
    input: String,
    output: String,
) -> Result<(), CliError> {
    let mut problems = Problems::default();
    let (input, output) = (problems.take(Place::parse(&input)), problems.take(Place::parse(&output)));
    let required = parse_context(&context, &mut problems);
    if !trust.any_org && required.get("org").is_none() && !context.iter().any(|c| c.starts_with("org=")) {
        problems.push(CliError::usage(
            "no --context org=<organisation>: every callvault recording names its org, give it (or --any-org for \
             a message that names none)",
        ));
    }
    let range = range.as_deref().map(parse_range).and_then(|r| problems.take(r.map(Some))).flatten();
    trust.check(&mut problems);
    problems.finish()?;
    let (input, output) = input.zip(output).ok_or_else(|| CliError::usage("INPUT or OUTPUT is not a place"))?;
    let aws = aws().await?;
    let policy = trust.policy(&aws.region);
    let handle = Handle::current();

    let (s3, inp) = (aws.s3.clone(), input.clone());
    let h = handle.clone();
    // A ranged decrypt of a seekable input reads its frames separately: ask
    // only for the header's bytes here, not the whole object.
    let header_end = range.map(|_| header_limit());
    let (pending, len) = blocking(move || {
        let source = open_source(&h, &s3, &inp, 0, header_end)?;
        let pending = PendingMessage::read_header(source.reader, &Limits::default())?;
        Ok((pending, source.len))
    })
    .await?;

    let (data_key, _key_arn) = flow::open_message(&aws.kms, pending.header(), &policy, &required).await?;

    blocking(move || {
        let mut sink = Sink::open(&handle, &aws.s3, &output, true)?;
        match (range, len) {
            (None, _) => {
                let reader = pending.decrypt(&data_key)?;
                let mut reader = Progress::new(reader, len, "decrypted");
                std::io::copy(&mut reader, &mut sink).map_err(io_err)?;
                reader.finish();
            }
            (Some((start, end)), Some(total)) => {
                // Seekable input: read only the frames that cover the range.
                let header = pending.header().clone();
                drop(pending);
                let layout = BodyLayout::new(&header, total)?;
                let span = layout.span(start..end.unwrap_or(u64::MAX).min(layout.plaintext_len()))?;
                let opener = header.opener(&data_key)?;
                let source = open_source(&handle, &aws.s3, &input, span.ciphertext.start, Some(span.ciphertext.end))?;
                let mut reader = RangeReader::new(source.reader, opener, layout, &span);
                std::io::copy(&mut reader, &mut sink).map_err(io_err)?;
            }
            (Some((start, end)), None) => {
                // A stream: decrypt (and so authenticate) everything up to the
                // end of the range, keep only the range.
                let mut reader = pending.decrypt(&data_key)?;
                copy_range(&mut reader, &mut sink, start..end.unwrap_or(u64::MAX))?;
            }
        }
        sink.commit()
    })
    .await
}

fn copy_range(reader: &mut impl Read, out: &mut impl Write, range: Range<u64>) -> Result<(), CliError> {
    let skipped = std::io::copy(&mut reader.take(range.start), &mut std::io::sink()).map_err(io_err)?;
    let copied = std::io::copy(&mut reader.take(range.end - range.start), out).map_err(io_err)?;
    let reached = skipped + copied;
    if copied == 0 || (range.end != u64::MAX && reached < range.end) {
        return Err(CliError {
            code: "range_not_satisfiable",
            message: format!("range {}..{} is outside the plaintext of {} bytes", range.start, range.end, reached),
        });
    }
    Ok(())
}

pub async fn inspect(input: String) -> Result<(), CliError> {
    let input = Place::parse(&input)?;
    let s3 = match &input {
        Place::S3(_) => aws().await?.s3,
        _ => unused_s3(),
    };
    let handle = Handle::current();
    let json = blocking(move || {
        // Bounded to the header for a file or S3 object (a stream is read to
        // its end below, whatever the bound).
        let source = open_source(&handle, &s3, &input, 0, Some(header_limit()))?;
        let pending = PendingMessage::read_header(source.reader, &Limits::default())?;
        let header = pending.header().clone();
        let plaintext_len = match source.len {
            Some(total) => final_frame_len(&handle, &s3, &input, &header, total)?,
            None => {
                // A stream: count the rest.
                let mut rest = pending.into_inner();
                let body = std::io::copy(&mut rest, &mut std::io::sink()).map_err(io_err)?;
                BodyLayout::new(&header, header.len as u64 + body).ok().map(|l| l.plaintext_len())
            }
        };
        Ok(header_json(&header, plaintext_len))
    })
    .await?;
    println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    Ok(())
}

/// An S3 handle for inputs that are not in S3: never called, so it needs no
/// region or credentials.
fn unused_s3() -> S3Objects {
    let config = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
    S3Objects::from_config(&config)
}

/// The plaintext length, confirmed by the final frame's own length field.
fn final_frame_len(
    handle: &Handle,
    s3: &S3Objects,
    input: &Place,
    header: &Header,
    total: u64,
) -> Result<Option<u64>, CliError> {
    let Ok(layout) = BodyLayout::new(header, total) else { return Ok(None) };
    let offset = layout.final_frame_offset();
    let mut source = open_source(handle, s3, input, offset, Some(offset + FINAL_FRAME_PREFIX_LEN as u64))?;
    let mut prefix = [0u8; FINAL_FRAME_PREFIX_LEN];
    if source.reader.read_exact(&mut prefix).is_err() {
        return Ok(None);
    }
    Ok(layout.final_frame_matches(&prefix).then(|| layout.plaintext_len()))
}

fn header_json(header: &Header, plaintext_len: Option<u64>) -> serde_json::Value {
    serde_json::json!({
        "version": 2,
        "suite_id": format!("0x{:04x}", header.suite_id),
        "message_id": hex::encode(header.message_id),
        "encryption_context": header.encryption_context.as_map(),
        "encrypted_data_keys": header.encrypted_data_keys.iter().map(|e| serde_json::json!({
            "provider_id": e.provider_id,
            "provider_info": e.provider_info_str().map(str::to_string).unwrap_or_else(|| hex::encode(&e.provider_info)),
        })).collect::<Vec<_>>(),
        "frame_length": header.frame_length,
        "header_length": header.len,
        "plaintext_length": plaintext_len,
    })
}
