//! The retention Lambda: clients and configuration built once per
//! container, then one run or request per invocation.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use retention::{Config, Handler};
use vault::aws::{DynamoCatalog, S3Objects};
use vault::config::FromSettings;
use vault::metrics::StdoutMetrics;

// Freed memory keeps no copy of a data key, ours or the SDK's (vault::wipe).
#[global_allocator]
static ALLOCATOR: vault::wipe::WipeOnFree = vault::wipe::WIPE_ON_FREE;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let s3 = S3Objects::from_config(&sdk);
    let catalog = DynamoCatalog::from_config(&sdk, &config.catalog_table);
    let handler = Handler::new(config, catalog, s3.clone(), s3, Arc::new(StdoutMetrics));
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handler.handle(&event.payload, vault::time::unix_now(), &event.context.request_id).await
    }))
    .await
}
