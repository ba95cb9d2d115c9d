//! The AWS calls the CLI makes itself, in one place: Lambda (a function's
//! settings, an invocation), KMS (retiring a key), S3 (the redrive's reads of
//! the ingest bucket, a re-key job's manifest), S3 Control (the job), SQS
//! (dead letters), and SigV4-signed requests to an
//! IAM-authenticated Function URL (the retention duties). Each failure becomes the
//! command's error here: a stable code and what was being done. What the
//! vault itself calls (the catalog, vault objects, data keys) goes through
//! `vault::aws`; this module borrows none of its error mappings.

use std::collections::HashMap;
use std::sync::OnceLock;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_s3control::types::{
    JobManifest, JobManifestFieldName, JobManifestFormat, JobManifestLocation, JobManifestSpec, JobOperation,
    JobReport, JobReportFormat, JobReportScope, LambdaInvokeOperation,
};
use serde_json::Value;

use crate::CliError;

/// The AWS SDK's configuration, and the clients built from it on first use,
/// once per command (a redrive's loop reuses them for every recording).
pub struct Aws {
    sdk: aws_config::SdkConfig,
    lambda: OnceLock<aws_sdk_lambda::Client>,
    kms: OnceLock<aws_sdk_kms::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
}

/// What an invocation answered.
pub struct Invoked {
    /// The function's answer, or its error object (`errorType`,
    /// `errorMessage`) when it failed.
    pub payload: Value,
    /// Set when the function failed (Lambda's `X-Amz-Function-Error`).
    pub function_error: Option<String>,
}

/// An ingest object as S3 would announce it now.
pub struct Head {
    pub etag: String,
    pub version: Option<String>,
    pub size: u64,
}

/// The S3 Batch Operations job a re-key creates.
pub struct RekeyJob<'a> {
    pub account: &'a str,
    pub partition: &'a str,
    pub bucket: &'a str,
    pub manifest_key: &'a str,
    pub manifest_etag: &'a str,
    pub function_arn: &'a str,
    pub role_arn: &'a str,
    pub arguments: HashMap<String, String>,
    pub schema: &'a str,
    pub token: &'a str,
    pub description: String,
    pub priority: i32,
    pub confirmed: bool,
}

impl Aws {
    /// The configuration from the environment (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`).
    pub async fn from_env() -> Self {
        let sdk = aws_config::load_from_env().await;
        Self { sdk, lambda: OnceLock::new(), kms: OnceLock::new(), s3: OnceLock::new(), sqs: OnceLock::new() }
    }

    /// The configuration, for the vault's adapters.
    pub fn sdk(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| {
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(true).build())
        })
    }

    fn lambda(&self) -> &aws_sdk_lambda::Client {
        self.lambda.get_or_init(|| aws_sdk_lambda::Client::new(&self.sdk))
    }

    fn kms(&self) -> &aws_sdk_kms::Client {
        self.kms.get_or_init(|| aws_sdk_kms::Client::new(&self.sdk))
    }

    fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs.get_or_init(|| aws_sdk_sqs::Client::new(&self.sdk))
    }

    // ------------------------------------------------------------ Lambda

    /// A function's environment; `None` when there is no such function.
    pub async fn function_settings(&self, name: &str) -> Result<Option<HashMap<String, String>>, CliError> {
        let lambda = self.lambda();
        match lambda.get_function_configuration().function_name(name).send().await {
            Ok(out) => Ok(Some(out.environment().and_then(|e| e.variables()).cloned().unwrap_or_default())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(sdk_error(&format!("reading the configuration of {name}"), e)),
        }
    }

    /// Invokes `function` with `payload` and waits for its answer.
    pub async fn invoke(&self, function: &str, payload: String) -> Result<Invoked, CliError> {
        let lambda = self.lambda();
        let out = lambda
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await;
        match out {
            Ok(out) => Ok(Invoked {
                payload: out
                    .payload
                    .as_ref()
                    .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
                    .unwrap_or(Value::Null),
                function_error: out.function_error().map(str::to_string),
            }),
            Err(e) => Err(sdk_error(&format!("invoking {function}"), e)),
        }
    }

    // ------------------------------------------------------------ KMS

    /// Disables a key.
    pub async fn disable_key(&self, key: &str) -> Result<(), CliError> {
        let kms = self.kms();
        kms.disable_key().key_id(key).send().await.map_err(|e| kms_error(key, "disabling", e))?;
        Ok(())
    }

    /// Schedules a key's deletion after `days`; when it will happen (RFC 3339).
    pub async fn schedule_key_deletion(&self, key: &str, days: i32) -> Result<String, CliError> {
        let kms = self.kms();
        let out = kms
            .schedule_key_deletion()
            .key_id(key)
            .pending_window_in_days(days)
            .send()
            .await
            .map_err(|e| kms_error(key, "scheduling the deletion of", e))?;
        Ok(out.deletion_date().map(|d| vault::time::rfc3339(d.secs().max(0) as u64)).unwrap_or_default())
    }

    // ------------------------------------------------------------ S3

    /// The object as S3 would announce it now; `Ok(None)` when it is gone,
    /// `Err(code)` when it cannot be read.
    pub async fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<Head>, &'static str> {
        let out =
            self.s3().head_object().bucket(bucket).key(key).set_version_id(version.map(str::to_string)).send().await;
        match out {
            Ok(h) => Ok(Some(Head {
                etag: h.e_tag().unwrap_or_default().to_string(),
                version: h.version_id().filter(|v| *v != "null").map(str::to_string),
                size: h.content_length().unwrap_or(0).max(0) as u64,
            })),
            Err(e) => match s3_code(&e) {
                "not_found" => Ok(None),
                code => Err(code),
            },
        }
    }

    /// Every object under `prefix` that carries the tag `tag`: its key and
    /// the tag's value.
    pub async fn tagged(&self, bucket: &str, prefix: &str, tag: &str) -> Result<Vec<(String, String)>, CliError> {
        let s3 = self.s3();
        let mut found = Vec::new();
        let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("listing the ingest bucket", e))?;
            for obj in page.contents() {
                let Some(key) = obj.key() else { continue };
                let tags = s3
                    .get_object_tagging()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("reading the tags of {key}"), e))?;
                if let Some(t) = tags.tag_set().iter().find(|t| t.key() == tag) {
                    found.push((key.to_string(), t.value().to_string()));
                }
            }
        }
        Ok(found)
    }

    /// Writes a job's CSV manifest; its ETag, unquoted.
    pub async fn put_manifest(&self, bucket: &str, key: &str, csv: String) -> Result<String, CliError> {
        let put = self
            .s3()
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("text/csv")
            .body(csv.into_bytes().into())
            .send()
            .await
            .map_err(|e| sdk_error(&format!("writing the manifest to s3://{bucket}/{key}"), e))?;
        Ok(put.e_tag().unwrap_or_default().trim_matches('"').to_string())
    }

    // ------------------------------------------------------------ S3 Control

    /// Creates the S3 Batch Operations job that invokes the rekey function
    /// for every line of the manifest; the job's id.
    pub async fn create_rekey_job(&self, job: RekeyJob<'_>) -> Result<String, CliError> {
        let build = |e: aws_sdk_s3control::error::BuildError| CliError { code: "usage", message: e.to_string() };
        let operation = JobOperation::builder()
            .lambda_invoke(
                LambdaInvokeOperation::builder()
                    .function_arn(job.function_arn)
                    .invocation_schema_version(job.schema)
                    .set_user_arguments(Some(job.arguments))
                    .build(),
            )
            .build();
        let manifest = JobManifest::builder()
            .spec(
                JobManifestSpec::builder()
                    .format(JobManifestFormat::S3BatchOperationsCsv20180820)
                    .fields(JobManifestFieldName::Bucket)
                    .fields(JobManifestFieldName::Key)
                    .build()
                    .map_err(build)?,
            )
            .location(
                JobManifestLocation::builder()
                    .object_arn(format!("arn:{}:s3:::{}/{}", job.partition, job.bucket, job.manifest_key))
                    .e_tag(job.manifest_etag)
                    .build()
                    .map_err(build)?,
            )
            .build();
        let report = JobReport::builder()
            .bucket(format!("arn:{}:s3:::{}", job.partition, job.bucket))
            .format(JobReportFormat::ReportCsv20180820)
            .enabled(true)
            .prefix(format!("rekey/{}", job.token))
            .report_scope(JobReportScope::AllTasks)
            .build();
        let out = s3control_client(&self.sdk)
            .create_job()
            .account_id(job.account)
            .confirmation_required(!job.confirmed)
            .operation(operation)
            .manifest(manifest)
            .report(report)
            .client_request_token(job.token)
            .description(job.description)
            .priority(job.priority)
            .role_arn(job.role_arn)
            .send()
            .await
            .map_err(|e| sdk_error("S3 Control CreateJob", e))?;
        Ok(out.job_id().unwrap_or_default().to_string())
    }

    // ------------------------------------------------------------ SQS

    /// Up to ten dead letters, hidden from other readers for an hour: each
    /// letter's body and receipt. Empty when the queue is.
    pub async fn receive_dead_letters(&self, url: &str) -> Result<Vec<(String, Option<String>)>, CliError> {
        let sqs = self.sqs();
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            // Every letter is received before any is re-submitted, and each
            // re-submission may take minutes: an hour keeps the receipts
            // good. Letters not finished are put back at once at the end.
            .visibility_timeout(3600)
            .send()
            .await
            .map_err(|e| sdk_error("reading the dead-letter queue", e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| (m.body().unwrap_or("").to_string(), m.receipt_handle().map(str::to_string)))
            .collect())
    }

    /// Deletes a dead letter that has served.
    pub async fn delete_dead_letter(&self, url: &str, receipt: &str) -> Result<(), CliError> {
        let sqs = self.sqs();
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| sdk_error("deleting the dead letter", e))?;
        Ok(())
    }

    /// Puts a dead letter back on the queue at once.
    pub async fn return_dead_letter(&self, url: &str, receipt: &str) -> Result<(), CliError> {
        let sqs = self.sqs();
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| sdk_error("returning the dead letter", e))?;
        Ok(())
    }

    // ------------------------------------------------------------ STS
}

/// What a Function URL answered: the HTTP status and the JSON body.
pub struct UrlAnswer {
    pub status: u16,
    pub body: Value,
}

/// The longest answer read from a Function URL.
const MAX_URL_ANSWER: usize = 1 << 20;
/// How long a duty's answer may take: past its function's 300 s timeout.
const URL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(330);

impl Aws {
    /// POSTs `body` to an IAM-authenticated Function URL, signed with
    /// SigV4 (service `lambda`) by the caller's credentials: Lambda checks
    /// the signature and the caller's `lambda:InvokeFunctionUrl` before the
    /// function runs, and hands the function the caller it authenticated.
    pub async fn post_signed(&self, url: &str, body: &Value) -> Result<UrlAnswer, CliError> {
        use aws_credential_types::provider::ProvideCredentials;
        use http_body_util::Full;

        let parsed: http::Uri =
            url.parse().map_err(|e| CliError { code: "usage", message: format!("{url:?} is not a URL: {e}") })?;
        let loopback = matches!(parsed.host(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme_str() != Some("https") && !(parsed.scheme_str() == Some("http") && loopback) {
            return Err(CliError {
                code: "usage",
                message: format!("{url}: a Function URL is https:// (plain http only to this machine's loopback)"),
            });
        }
        // The URL names its region (`<id>.lambda-url.<region>.on.aws`), which
        // the signature must name; elsewhere (this machine's loopback), AWS_REGION.
        let region = match url_region(parsed.host().unwrap_or_default()) {
            Some(r) => r.to_string(),
            None => self.sdk.region().map(|r| r.to_string()).ok_or_else(|| CliError {
                code: "credentials_missing",
                message: "no AWS region: set AWS_REGION to the stack's region (the URL's signature names it)".into(),
            })?,
        };
        let provider = self.sdk.credentials_provider().ok_or_else(|| CliError {
            code: "credentials_missing",
            message: "no AWS credentials to sign the request with".into(),
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| CliError {
            code: "credentials_missing",
            message: format!("no AWS credentials to sign the request with: {e}"),
        })?;
        let payload = body.to_string().into_bytes();
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(parsed)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(bytes::Bytes::from(payload.clone())))
            .map_err(|e| CliError { code: "usage", message: format!("{url}: {e}") })?;
        let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name("lambda")
            .time(std::time::SystemTime::now())
            .settings(aws_sigv4::http_request::SigningSettings::default())
            .build()
            .map_err(|e| CliError { code: "credentials_missing", message: format!("cannot sign: {e}") })?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let signable = aws_sigv4::http_request::SignableRequest::new(
            "POST",
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            aws_sigv4::http_request::SignableBody::Bytes(&payload),
        )
        .map_err(|e| CliError { code: "usage", message: format!("cannot sign a request to {url}: {e}") })?;
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .map_err(|e| CliError { code: "usage", message: format!("cannot sign a request to {url}: {e}") })?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);

        let unreachable = |e: String| CliError { code: "endpoint_unreachable", message: format!("{url}: {e}") };
        let client = vault::https::client().map_err(unreachable)?;
        let (status, bytes) =
            vault::https::send(&client, request, MAX_URL_ANSWER, URL_TIMEOUT).await.map_err(unreachable)?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).chars().take(300).collect()));
        Ok(UrlAnswer { status, body })
    }
}

/// The region of a Lambda Function URL's host, `<id>.lambda-url.<region>.on.aws`.
fn url_region(host: &str) -> Option<&str> {
    let rest = host.split_once(".lambda-url.")?.1;
    let region = rest.strip_suffix(".on.aws")?;
    (!region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        .then_some(region)
}

/// A failure of an AWS call of the command itself, doing `what`: nothing
/// reached AWS (`credentials_missing`, `endpoint_unreachable`), AWS did not
/// accept the credentials (`credentials_rejected`), or refused or failed the
/// call (`aws_error`, with its code and message).
fn sdk_error<E, R>(what: &str, err: aws_sdk_s3::error::SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let Some(e) = credentials_or_transport(what, "AWS", &err) {
        return e;
    }
    CliError::aws(what, aws_sdk_s3::error::DisplayErrorContext(err))
}

/// The failure of a call to `service` that never reached it
/// (`credentials_missing`, `endpoint_unreachable`) or whose credentials it
/// did not accept (`credentials_rejected`); `None` for any other failure.
fn credentials_or_transport<E, R>(
    what: &str,
    service: &str,
    err: &aws_sdk_s3::error::SdkError<E, R>,
) -> Option<CliError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let Some(t) = vault::aws::transport_failure(err) {
        return Some(CliError { code: t.code(), message: format!("{what}: {}", t.describe(service)) });
    }
    let code = rejected_credentials(err)?;
    Some(CliError {
        code: "credentials_rejected",
        message: format!("{what}: {service} did not accept the credentials ({code}): they are expired or unknown: refresh them (aws sso login, or new access keys)"),
    })
}

/// The error code, when AWS answered that it does not know or no longer
/// accepts the caller's credentials (the codes differ by service).
fn rejected_credentials<E: ProvideErrorMetadata, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> Option<&str> {
    let code = err.as_service_error()?.code()?;
    matches!(
        code,
        "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "ExpiredToken"
            | "InvalidClientTokenId"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
    )
    .then_some(code)
}

/// A KMS failure of `what key`: the code the vault's key errors use for the
/// same refusal (`key_access_denied`, `key_not_found`, ...), and for a
/// denial the hint that the key policy asks for MFA.
fn kms_error<E, R>(key: &str, what: &str, err: aws_sdk_kms::error::SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_kms::error::SdkError;
    if let Some(e) = credentials_or_transport(&format!("{what} {key}"), "KMS", &err) {
        return e;
    }
    let (code, detail) = match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let message = e.message().unwrap_or("no message").to_string();
            let code = match e.code().unwrap_or_default() {
                "DisabledException" => "key_disabled",
                "KMSInvalidStateException" if message.to_ascii_lowercase().contains("pending deletion") => {
                    "key_pending_deletion"
                }
                "KMSInvalidStateException" => "key_unavailable",
                "AccessDeniedException" | "InvalidGrantTokenException" => "key_access_denied",
                "NotFoundException" => "key_not_found",
                "ThrottlingException" | "LimitExceededException" | "RequestLimitExceeded" => "kms_throttled",
                "InvalidKeyUsageException" | "UnsupportedOperationException" => "key_unsupported",
                _ => "kms_unavailable",
            };
            (code, format!("{}: {message}", e.code().unwrap_or("unknown")))
        }
        other => ("kms_unavailable", aws_sdk_kms::error::DisplayErrorContext(other).to_string()),
    };
    let hint = if code == "key_access_denied" {
        " (the key policy asks for MFA on ScheduleKeyDeletion: use a session with MFA)"
    } else {
        ""
    };
    CliError { code, message: format!("{what} {key}: {detail}{hint}") }
}

/// An S3 failure's code, as the vault's object errors name the same one.
fn s3_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> &'static str
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(t) = vault::aws::transport_failure(err) {
        return t.code();
    }
    if rejected_credentials(err).is_some() {
        return "credentials_rejected";
    }
    match err {
        aws_sdk_s3::error::SdkError::ServiceError(se) => match se.err().code().unwrap_or_default() {
            "NoSuchKey" | "NoSuchBucket" | "NoSuchVersion" | "NotFound" => "not_found",
            "AccessDenied" | "Forbidden" => "access_denied",
            "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" => "s3_unavailable",
            "PreconditionFailed" => "source_changed",
            _ => "s3_refused",
        },
        _ => "s3_unavailable",
    }
}

/// The S3 Control client. S3 Control puts the account id in the host name
/// (`<account>.s3-control.<region>.amazonaws.com`); with
/// `CALLVAULT_S3_CONTROL_ENDPOINT` set, requests go to that URL as it is (a
/// proxy, or the loopback recorder the tests check the request with), the
/// account id still in its `x-amz-account-id` header.
fn s3control_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3control::Client {
    let mut conf = aws_sdk_s3control::config::Builder::from(sdk);
    if let Ok(url) = std::env::var("CALLVAULT_S3_CONTROL_ENDPOINT") {
        conf = conf.endpoint_resolver(FixedEndpoint(url));
    }
    aws_sdk_s3control::Client::from_conf(conf.build())
}

#[derive(Debug)]
struct FixedEndpoint(String);

impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _params: &'a aws_sdk_s3control::config::endpoint::Params,
    ) -> aws_sdk_s3control::config::endpoint::EndpointFuture<'a> {
        let endpoint = aws_sdk_s3control::config::endpoint::Endpoint::builder().url(self.0.clone()).build();
        aws_sdk_s3control::config::endpoint::EndpointFuture::ready(Ok(endpoint))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_function_urls_region_is_read_from_its_host() {
        assert_eq!(
            super::url_region("abcdefghij0123456789abcdefghij01.lambda-url.eu-west-2.on.aws"),
            Some("eu-west-2")
        );
        assert_eq!(super::url_region("127.0.0.1"), None);
        assert_eq!(super::url_region("x.lambda-url..on.aws"), None);
        assert_eq!(super::url_region("x.lambda-url.eu-west-2.on.aws.evil.example"), None);
    }

    /// Every AWS SDK call of the CLI is in this module: no other file names
    /// an SDK crate (the vault's calls go through `vault::aws`).
    #[test]
    fn only_this_module_names_the_aws_sdk() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        for entry in std::fs::read_dir(&src).unwrap().flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "aws.rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            assert!(
                !source.contains("aws_sdk_") && !source.contains("aws_smithy"),
                "{} names the AWS SDK: put the call in src/aws.rs",
                path.display()
            );
            checked += 1;
        }
        assert!(checked >= 7, "the CLI's modules were read: {checked}");
    }
}
