//! The rekey Lambda: clients and configuration built once per container,
//! then one S3 Batch Operations invocation at a time.

use lambda_runtime::{service_fn, LambdaEvent};
use rekey::{Config, Handler};
use vault::aws::{AwsKms, DynamoCatalog, RegionalAdapters, S3Objects};
use vault::config::FromSettings;
use vault::rekey::Rekeyer;

// The allocator that wipes freed memory, tracing, the runtime, the SDK's
// configuration: the same start for every function (vault::bootstrap).
vault::lambda_main!(serve);

async fn serve(sdk: aws_config::SdkConfig) -> Result<(), vault::bootstrap::Error> {
    let config = Config::from_env()?;
    // A job may move recordings into another region's deployment.
    let rekeyer = Rekeyer::new(
        AwsKms::new(&sdk),
        S3Objects::from_config(&sdk),
        DynamoCatalog::from_config(&sdk, &config.catalog_table),
        config.settings,
    )
    .with_destinations(std::sync::Arc::new(RegionalAdapters::new(&sdk)));
    let handler = Handler::new(rekeyer);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handler.handle(&event.payload).await
    }))
    .await
}
