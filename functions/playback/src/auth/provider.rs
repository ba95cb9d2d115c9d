//! The identity provider's HTTP endpoints (discovery, JWKS, token), as a
//! port: [`HttpProvider`] on AWS and locally, an in-memory issuer in tests.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use lambda_http::http::{header, Method, Request};

/// A call to the identity provider that failed: unreachable, timed out, or
/// not JSON.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{url}: {detail}")]
pub struct ProviderError {
    pub url: String,
    pub detail: String,
}

/// The identity provider's endpoints, by URL.
pub trait IdentityProvider: Send + Sync {
    /// GET `url`, a JSON document (discovery, JWKS).
    fn get_json(&self, url: &str) -> impl Future<Output = Result<serde_json::Value, ProviderError>> + Send;

    /// POST a form to `url` (the token endpoint), with HTTP Basic client
    /// authentication when `basic` is given: the status and the JSON answer.
    fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> impl Future<Output = Result<(u16, serde_json::Value), ProviderError>> + Send;
}

/// Most bytes read of an answer: discovery and JWKS documents are small.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The identity provider over HTTPS ([`vault::https`]: rustls with
/// aws-lc-rs, the system's roots); plain HTTP only to loopback (the local
/// issuer), which the configuration checks.
pub struct HttpProvider {
    client: vault::https::Client,
}

impl HttpProvider {
    /// A client with the system's trust roots.
    pub fn new() -> Result<Self, String> {
        Ok(Self { client: vault::https::client()? })
    }

    async fn send(&self, request: Request<Full<Bytes>>, url: &str) -> Result<(u16, serde_json::Value), ProviderError> {
        let error = |detail: String| ProviderError { url: url.to_string(), detail };
        let (status, body) =
            vault::https::send(&self.client, request, MAX_ANSWER_BYTES, TIMEOUT).await.map_err(error)?;
        let json =
            serde_json::from_slice(&body).map_err(|e| error(format!("HTTP {status}, not a JSON answer ({e})")))?;
        Ok((status, json))
    }
}

impl IdentityProvider for HttpProvider {
    async fn get_json(&self, url: &str) -> Result<serde_json::Value, ProviderError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ProviderError { url: url.into(), detail: format!("not a URL: {e}") })?;
        match self.send(request, url).await? {
            (200, json) => Ok(json),
            (status, _) => Err(ProviderError { url: url.into(), detail: format!("HTTP {status}") }),
        }
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<(u16, serde_json::Value), ProviderError> {
        let body = form_encode(form);
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            use base64::Engine as _;
            // RFC 6749 2.3.1: each part form-encoded before joining.
            let pair = format!("{}:{}", form_component(id), form_component(secret));
            let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProviderError { url: url.into(), detail: format!("not a URL: {e}") })?;
        self.send(request, url).await
    }
}

/// What a form component keeps as it is: RFC 3986's unreserved characters.
const FORM: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `application/x-www-form-urlencoded` of one component (spaces as `%20`).
pub fn form_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, FORM).to_string()
}

/// A form (or a query string) of name=value pairs.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", form_component(k), form_component(v))).collect::<Vec<_>>().join("&")
}
