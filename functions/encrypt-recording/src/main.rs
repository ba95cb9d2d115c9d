//! The encrypt-recording Lambda: clients and configuration built once per
//! container, then the handler for every event.

use encrypt_recording::{Config, Handler};
use lambda_runtime::{service_fn, LambdaEvent};
use vault::aws::{AwsKms, DeadLetterQueue, DynamoCatalog, S3Objects};
use vault::config::FromSettings;
use vault::ingest::RecordingEncryptor;

// The allocator that wipes freed memory, tracing, the runtime, the SDK's
// configuration: the same start for every function (vault::bootstrap).
vault::lambda_main!(serve);

async fn serve(sdk: aws_config::SdkConfig) -> Result<(), vault::bootstrap::Error> {
    let config = Config::from_env()?;
    let encryptor = RecordingEncryptor::new(
        AwsKms::new(&sdk),
        S3Objects::from_config(&sdk),
        DynamoCatalog::from_config(&sdk, &config.catalog_table),
        config.settings,
    );
    let dead_letters = config.dead_letter_queue_url.map(|url| DeadLetterQueue::from_config(&sdk, url));
    let handler = Handler::new(encryptor, dead_letters);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handler.handle(event.payload, event.context.deadline, &event.context.request_id).await
    }))
    .await
}
