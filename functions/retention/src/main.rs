//! The retention Lambda: clients and configuration built once per
//! container, then one run or request per invocation.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use retention::{Config, Handler};
use vault::aws::{DynamoCatalog, S3Objects};
use vault::config::FromSettings;
use vault::metrics::StdoutMetrics;

// The allocator that wipes freed memory, tracing, the runtime, the SDK's
// configuration: the same start for every function (vault::bootstrap).
vault::lambda_main!(serve);

async fn serve(sdk: aws_config::SdkConfig) -> Result<(), vault::bootstrap::Error> {
    let config = Config::from_env()?;
    let s3 = S3Objects::from_config(&sdk);
    let catalog = DynamoCatalog::from_config(&sdk, &config.catalog_table);
    let handler = Handler::new(config, catalog, s3.clone(), s3, Arc::new(StdoutMetrics));
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handler.handle(&event.payload, vault::time::unix_now(), &event.context.request_id).await
    }))
    .await
}
