//! The playback Lambda: clients, configuration and the data-key cache built
//! once per container, then the handler for every request.

// The streaming runtime's service stack nests futures deeper than the default limit.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_http::{service_fn, Request};
use playback::{Config, Handler, StdoutAudit};
use vault::aws::{AwsKms, DynamoCatalog, S3Objects};
use vault::config::FromSettings;
use vault::playback::RecordingPlayer;

// Freed memory keeps no copy of a data key, ours or the SDK's (vault::wipe).
#[global_allocator]
static ALLOCATOR: vault::wipe::WipeOnFree = vault::wipe::WIPE_ON_FREE;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let player = RecordingPlayer::new(
        AwsKms::new(&sdk),
        S3Objects::from_config(&sdk),
        DynamoCatalog::from_config(&sdk, &config.catalog_table),
        config.settings,
    );
    let handler = Arc::new(Handler::new(player, config.max_response_bytes, Arc::new(StdoutAudit)));
    lambda_http::run_with_streaming_response(service_fn(move |req: Request| {
        let handler = handler.clone();
        async move { Ok::<_, std::convert::Infallible>(handler.handle(req).await) }
    }))
    .await
}
