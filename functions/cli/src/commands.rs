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

fn parse_context(pairs: &[String]) -> Result<EncryptionContext, CliError> {
    let mut ctx = EncryptionContext::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| CliError::usage(format!("--context {p:?}: use KEY=VALUE")))?;
        if ctx.get(k).is_some() {
            return Err(CliError::usage(format!("--context {k} given twice")));
        }
        ctx.insert(k, v);
    }
    Ok(ctx)
}

/// Parses `START-END` (inclusive) or `START-` into an exclusive range.
fn parse_range(s: &str) -> Result<(u64, Option<u64>), CliError> {
    let bad = || CliError::usage(format!("--range {s:?}: use START-END (inclusive byte offsets) or START-"));
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    if b.trim().is_empty() {
        return Ok((start, None));
    }
    let end: u64 = b.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok((start, Some(end.saturating_add(1))))
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
    let (input, output) = (Place::parse(&input)?, Place::parse(&output)?);
    let context = parse_context(&context)?;
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
    /// The unwrap policy, or why the operator must say more.
    fn policy(self, region: &str) -> Result<UnwrapPolicy, CliError> {
        if self.keys.is_empty() && self.accounts.is_empty() {
            return Err(CliError {
                code: "key_filter_required",
                message: "decrypt calls KMS only for keys you trust, and a message's header is not trusted until it \
                          authenticates: name the key (--key <ARN>) or your accounts (--account <ACCOUNT_ID>)"
                    .into(),
            });
        }
        for key in &self.keys {
            if !KmsArn::parse(key).is_some_and(|a| a.is_key()) {
                return Err(CliError::usage(format!(
                    "--key {key:?}: use a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
                )));
            }
        }
        for account in &self.accounts {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CliError::usage(format!("--account {account:?}: use a 12-digit AWS account id")));
            }
        }
        Ok(UnwrapPolicy {
            region: region.to_string(),
            allowed_keys: (!self.keys.is_empty()).then_some(self.keys),
            allowed_accounts: (!self.accounts.is_empty()).then_some((self.partition, self.accounts)),
            allow_other_regions: true,
        })
    }
}

pub async fn decrypt(
    context: Vec<String>,
    trust: Trust,
    range: Option<String>,
    input: String,
    output: String,
) -> Result<(), CliError> {
    let (input, output) = (Place::parse(&input)?, Place::parse(&output)?);
    let required = parse_context(&context)?;
    if !trust.any_org && required.get("org").is_none() {
        return Err(CliError::usage(
            "--context org=<organisation> is required: every callvault recording names its org (--any-org for a message that names none)",
        ));
    }
    let range = range.as_deref().map(parse_range).transpose()?;
    let aws = aws().await?;
    let policy = trust.policy(&aws.region)?;
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
