//! The key-guardian Lambda: clients and configuration built once per
//! container, then the handler for every event.

use std::sync::Arc;

use key_guardian::{Config, Handler};
use lambda_runtime::{service_fn, LambdaEvent};
use vault::aws::{AlertTopic, AwsKms, DynamoCatalog};
use vault::config::FromSettings;
use vault::metrics::StdoutMetrics;

// The allocator that wipes freed memory, tracing, the runtime, the SDK's
// configuration: the same start for every function (vault::bootstrap).
vault::lambda_main!(serve);

async fn serve(sdk: aws_config::SdkConfig) -> Result<(), vault::bootstrap::Error> {
    let config = Config::from_env()?;
    let handler = Handler::new(
        config.clone(),
        AwsKms::new(&sdk),
        DynamoCatalog::from_config(&sdk, &config.catalog_table),
        AlertTopic::from_config(&sdk, &config.alert_topic_arn),
        Arc::new(StdoutMetrics),
    );
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handler.handle(event.payload).await
    }))
    .await
}
