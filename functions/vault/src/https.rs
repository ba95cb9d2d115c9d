//! One HTTPS client for the calls callvault makes beside the AWS SDK (the
//! identity provider's endpoints, the retention duties' Function URLs):
//! hyper with rustls on aws-lc-rs and the system's trust roots, the stack
//! the SDK already builds. Plain HTTP is possible; each caller decides
//! where it allows it (loopback only).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The client, with a whole body per request.
pub type Client = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client with the system's trust roots.
pub fn client() -> Result<Client, String> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| format!("no TLS trust roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector))
}

/// Sends `request` and reads the answer's status and body, at most
/// `max_bytes` of it, all within `timeout`; what failed otherwise.
pub async fn send(
    client: &Client,
    request: http::Request<Full<Bytes>>,
    max_bytes: usize,
    timeout: Duration,
) -> Result<(u16, Bytes), String> {
    let call = async {
        let response = client.request(request).await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), max_bytes)
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, call).await.map_err(|_| format!("no answer within {timeout:?}"))?
}
