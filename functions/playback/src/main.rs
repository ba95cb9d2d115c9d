//! The playback Lambda: clients, configuration, the client secret and the
//! data-key cache built once per container, then the handler for every
//! request.

// The streaming runtime's service stack nests futures deeper than the default limit.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_http::{service_fn, Request};
use playback::auth::oidc::Oidc;
use playback::auth::provider::HttpProvider;
use playback::auth::signin::{Auth, SignIn};
use playback::{Config, Handler, StdoutAudit};
use vault::aws::{AwsKms, DynamoCatalog, S3Objects};
use vault::config::FromSettings;
use vault::playback::RecordingPlayer;

// The allocator that wipes freed memory, tracing, the runtime, the SDK's
// configuration: the same start for every function (vault::bootstrap).
vault::lambda_main!(serve);

async fn serve(sdk: aws_config::SdkConfig) -> Result<(), vault::bootstrap::Error> {
    let config = Config::from_env()?;
    // Read once, at start: a secret that cannot be read stops the function
    // with its code, before it answers anything.
    let sign_in = match &config.sign_in {
        None => None,
        Some(browser) => {
            let secrets = playback::aws::ClientSecrets::new(&sdk);
            let secret = secrets
                .client_secret(&browser.client_secret_arn)
                .await
                .inspect_err(|e| tracing::error!(code = e.code(), "{e}"))?;
            let session_keys = secrets
                .session_keys(&browser.session_keys_arn)
                .await
                .inspect_err(|e| tracing::error!(code = e.code(), "{e}"))?;
            Some(SignIn::new(browser.player_url.clone(), secret, session_keys, config.session, config.scopes.clone()))
        }
    };
    let auth =
        Auth { oidc: Oidc::new(HttpProvider::new()?, config.oidc.clone()), access: config.access.clone(), sign_in };
    let player = RecordingPlayer::new(
        AwsKms::new(&sdk),
        S3Objects::from_config(&sdk),
        DynamoCatalog::from_config(&sdk, &config.catalog_table),
        config.settings,
    );
    let mut handler = Handler::new(player, config.max_response_bytes, Arc::new(StdoutAudit), auth);
    if let Some(arn) = &config.front_secret_arn {
        let versions = playback::aws::ClientSecrets::new(&sdk)
            .front_secret(arn)
            .await
            .inspect_err(|e| tracing::error!(code = e.code(), "{e}"))?;
        handler = handler.with_front(playback::front::FrontKey::new(&versions));
    }
    let handler = Arc::new(handler);
    // A broken connection to the runtime API (a client that went away
    // mid-stream, a keep-alive connection the API closed) ends the runtime
    // loop with an error. Polling again keeps the opened messages, so the
    // person's next seek needs no KMS call; ten failures in a row, each
    // within a second of the last, stop the function as before.
    let mut quick_failures = 0;
    loop {
        let handler = handler.clone();
        let started = std::time::Instant::now();
        let ended = lambda_http::run_with_streaming_response(service_fn(move |req: Request| {
            let handler = handler.clone();
            async move { Ok::<_, std::convert::Infallible>(handler.handle(req).await) }
        }))
        .await;
        let Err(e) = ended else { return Ok(()) };
        quick_failures = if started.elapsed() < std::time::Duration::from_secs(1) { quick_failures + 1 } else { 1 };
        if quick_failures >= 10 {
            return Err(e);
        }
        tracing::warn!(
            code = "runtime_api",
            "the runtime API connection failed ({e}); polling for the next request again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
