//! The rotation-audit Lambda: clients and configuration built once per
//! container, then one audit per scheduled event.

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use rotation_audit::{Config, Handler};
use vault::aws::{AlertTopic, AwsKms, DynamoCatalog, S3Objects};
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
        S3Objects::from_config(&sdk),
        AlertTopic::from_config(&sdk, &config.alert_topic_arn),
        Arc::new(StdoutMetrics),
    );
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        handler.handle(now_ms, &event.context.request_id).await
    }))
    .await
}
