//! The key-guardian function on the local AWS, next to an encrypt-recording
//! [`Stack`]: an SNS alert topic with an SQS queue subscribed to it (the
//! local AWS sends no email), the real handler over the real SDK adapters,
//! and the sample events of `events/` rewritten to name this test's key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use vault::config::FromSettings;

use key_guardian::{Config, Handler, HandlerError};
use serde_json::Value;
use vault::aws::AlertTopic;
use vault::aws::AwsKms;
use vault::aws::DynamoCatalog as Catalog;
use vault::metrics::{emf, MetricsLog};

use crate::ingest::Stack;
use crate::playback::sample_event;
use crate::REGION;

/// The key ARN the sample KMS events name.
pub const SAMPLE_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";

/// EMF lines a handler wrote, parsed.
#[derive(Default)]
pub struct Metrics(Mutex<Vec<Value>>);

impl MetricsLog for Metrics {
    fn put(&self, function: &str, dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) {
        let line = emf(function, dimensions, metrics);
        self.0.lock().expect("metrics").push(serde_json::from_str(&line).expect("an EMF line is JSON"));
    }
}

impl Metrics {
    /// The values of metric `name` in lines whose properties include every `dims` pair.
    pub fn values(&self, name: &str, dims: &[(&str, &str)]) -> Vec<f64> {
        self.0
            .lock()
            .expect("metrics")
            .iter()
            .filter(|l| dims.iter().all(|(k, v)| l[*k] == *v))
            .filter_map(|l| l[name].as_f64())
            .collect()
    }
}

/// One alert as the subscribed queue received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub subject: String,
    pub body: String,
    pub attributes: HashMap<String, String>,
}

/// An SNS topic with an SQS queue subscribed to it: where a test reads the
/// alerts a function publishes.
pub struct Inbox {
    pub topic_arn: String,
    pub queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Inbox {
    /// Creates the topic `<stack>-<name>` and its subscribed queue.
    pub async fn new(stack: &Stack<'_>, name: &str) -> Inbox {
        let sdk = stack.aws.config(REGION).await;
        let sns = aws_sdk_sns::Client::new(&sdk);
        let name = format!("{}-{name}", stack.table.trim_end_matches("-catalog"));
        let topic_arn = sns.create_topic().name(&name).send().await.expect("CreateTopic").topic_arn.expect("topic arn");
        let queue_url =
            stack.sqs.create_queue().queue_name(&name).send().await.expect("CreateQueue").queue_url.expect("queue url");
        let queue_arn = stack
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
            .expect("queue arn");
        sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(queue_arn).send().await.expect("Subscribe");
        Inbox { topic_arn, queue_url, sqs: stack.sqs.clone() }
    }

    /// Every alert the queue holds now (deleted from it as read).
    pub async fn alerts(&self) -> Vec<Received> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage");
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}")).expect("an SNS envelope");
                let attributes = envelope["MessageAttributes"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v["Value"].as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Received {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_string(),
                    body: envelope["Message"].as_str().unwrap_or_default().to_string(),
                    attributes,
                });
                if let Some(handle) = m.receipt_handle() {
                    let _ = self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(handle).send().await;
                }
            }
        }
    }
}

/// A key guardian deployed next to a stack.
pub struct Guardian {
    pub topic_arn: String,
    pub handler: Handler<AwsKms, Catalog, AlertTopic>,
    pub metrics: Arc<Metrics>,
    inbox: Inbox,
}

impl Guardian {
    /// Creates the topic and its subscribed queue and a handler; `protect`
    /// sets PROTECT_KEYS_IN_USE.
    pub async fn new(stack: &Stack<'_>, protect: bool) -> Guardian {
        let sdk = stack.aws.config(REGION).await;
        let inbox = Inbox::new(stack, "alerts").await;
        let env: HashMap<&str, String> = env(stack, &inbox.topic_arn, protect).into_iter().collect();
        let config = Config::from_lookup(|n| env.get(n).cloned()).expect("key-guardian config");
        let metrics = Arc::new(Metrics::default());
        let handler = Handler::new(
            config.clone(),
            AwsKms::new(&sdk),
            Catalog::from_config(&sdk, &config.catalog_table),
            AlertTopic::from_config(&sdk, &config.alert_topic_arn),
            metrics.clone(),
        );
        Guardian { topic_arn: inbox.topic_arn.clone(), handler, metrics, inbox }
    }

    /// Invokes the handler with `event`.
    pub async fn invoke(&self, event: &Value) -> Result<Value, HandlerError> {
        self.handler.handle(event.clone()).await
    }

    /// Every alert the queue holds now (deleted from it as read).
    pub async fn alerts(&self) -> Vec<Received> {
        self.inbox.alerts().await
    }
}

/// The key guardian's environment, as template.yaml sets it.
pub fn env(stack: &Stack<'_>, topic_arn: &str, protect: bool) -> Vec<(&'static str, String)> {
    let mut env = stack.function_env("key-guardian");
    set(&mut env, "ALERT_TOPIC_ARN", topic_arn);
    set(&mut env, "PROTECT_KEYS_IN_USE", &protect.to_string());
    env
}

/// Sets `name` in `env`, which must already have it (template.yaml sets it).
pub fn set(env: &mut [(&'static str, String)], name: &str, value: &str) {
    let slot = env.iter_mut().find(|(k, _)| *k == name).unwrap_or_else(|| panic!("template.yaml sets no {name}"));
    slot.1 = value.to_string();
}

/// `events/<name>` naming `key_arn` instead of the sample key, with event id `id`.
pub fn kms_event(name: &str, key_arn: &str, id: &str) -> Value {
    let key_id = key_arn.rsplit('/').next().expect("key id");
    let text = sample_event(name)
        .to_string()
        .replace(SAMPLE_KEY, key_arn)
        .replace(SAMPLE_KEY.rsplit('/').next().expect("sample id"), key_id);
    let mut event: Value = serde_json::from_str(&text).expect("JSON");
    event["id"] = id.into();
    event
}
