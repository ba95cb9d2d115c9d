//! The AWS adapters: the only place an AWS SDK (`aws-sdk-*`, `aws-smithy-*`) name
//! appears. One module per port, named as the port is (`keys`: KMS,
//! `objects`: S3, `catalog`: DynamoDB, `alerts`: SNS, `dead_letters`: SQS, `destinations`: another region's S3 and DynamoDB), each with its SDK error mapping and the
//! list of IAM actions its calls need (`AWS_CALLS`), which
//! `tests/tests/iam.rs` checks against its code and against template.yaml.

pub mod alerts;
pub mod catalog;
pub mod dead_letters;
pub mod destinations;
pub mod keys;
pub mod objects;

pub use alerts::AlertTopic;
pub use catalog::DynamoCatalog;
pub use dead_letters::DeadLetterQueue;
pub use destinations::RegionalAdapters;
pub use keys::AwsKms;
pub use objects::S3Objects;

/// What failed before AWS answered, whichever service was called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// No credentials could be found or loaded (no profile, no environment,
    /// no instance role): nothing was sent.
    NoCredentials(String),
    /// No connection to the endpoint (refused, unresolvable, timed out).
    Unreachable(String),
}

impl TransportFailure {
    /// The stable code: `credentials_missing` or `endpoint_unreachable`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoCredentials(_) => "credentials_missing",
            Self::Unreachable(_) => "endpoint_unreachable",
        }
    }

    /// What happened and what to do, for `service` (KMS, S3, ...).
    pub fn describe(&self, service: &str) -> String {
        match self {
            Self::NoCredentials(detail) => format!(
                "no AWS credentials were found ({detail}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or sign in (aws sso login)"
            ),
            Self::Unreachable(detail) => format!(
                "cannot connect to {service} ({detail}): check the network, any proxy, and AWS_ENDPOINT_URL and \
                 AWS_REGION if set"
            ),
        }
    }
}

/// The transport failure behind an SDK error, if that is what it is: a
/// missing profile is never reported as "KMS is unavailable".
pub fn transport_failure<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Option<TransportFailure>
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::DispatchFailure(d) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = d.as_connector_error().map(|c| c as _);
            while let Some(e) = source {
                if let Some(c) = e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>() {
                    // The chain's summary, not the list of every provider tried.
                    let detail = innermost(c);
                    let first = detail.lines().next().unwrap_or_default().trim_end_matches(" Attempted:");
                    return Some(TransportFailure::NoCredentials(first.trim_end_matches('.').to_string()));
                }
                source = e.source();
            }
            let connector = d.as_connector_error().filter(|_| d.is_io() || d.is_timeout())?;
            Some(TransportFailure::Unreachable(innermost(connector)))
        }
        SdkError::TimeoutError(_) => Some(TransportFailure::Unreachable("the request timed out".into())),
        _ => None,
    }
}

/// The last error of a chain: the one that says what really happened
/// ("Connection refused (os error 111)"), not its wrappers.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
