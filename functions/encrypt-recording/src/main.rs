//! The encrypt-recording Lambda: clients and configuration built once per
//! container, then the handler for every event.

use encrypt_recording::{Config, Handler};
use lambda_runtime::{service_fn, LambdaEvent};
use vault::aws::{AwsKms, DeadLetterQueue, DynamoCatalog, S3Objects};
use vault::config::FromSettings;
use vault::ingest::RecordingEncryptor;

// Freed memory keeps no copy of a data key, ours or the SDK's (vault::wipe).
#[global_allocator]
static ALLOCATOR: vault::wipe::WipeOnFree = vault::wipe::WIPE_ON_FREE;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
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
