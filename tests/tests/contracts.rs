//! Every port's contract suite (`vault::contract`) against the AWS adapters
//! on the local AWS, deployed from template.yaml: the same suites the
//! in-memory twins pass in `cargo test -p vault`. One local AWS of its own,
//! one suite after another: the denied and throttled calls are injected
//! faults that would otherwise catch another test's requests.

use e2e::guardian::Inbox;
use e2e::ingest::Stack;
use e2e::*;
use serde_json::json;
use vault::aws::{AlertTopic, AwsKms, DeadLetterQueue, DynamoCatalog, S3Objects};
use vault::contract::alerts::AlertHarness;
use vault::contract::catalog::CatalogHarness;
use vault::contract::dead_letters::DeadLetterHarness;
use vault::contract::keys::KeyFixture;
use vault::contract::objects::ObjectHarness;
use vault::ports::objects::S3Location;

struct Local<'a> {
    aws: &'a LocalAws,
    stack: &'a Stack<'a>,
    inbox: Option<&'a Inbox>,
}

impl ObjectHarness for Local<'_> {
    async fn open_uploads(&self, bucket: &str) -> usize {
        self.stack
            .s3
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .expect("ListMultipartUploads")
            .uploads()
            .len()
    }

    async fn tags(&self, loc: &S3Location, version: Option<&str>) -> Vec<(String, String)> {
        let out = self
            .stack
            .s3
            .get_object_tagging()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .expect("GetObjectTagging");
        out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
    }

    async fn deny_next_read(&self, loc: &S3Location) {
        self.aws.inject_fault(json!({
            "method": "GET", "path_contains": format!("/{}/{}", loc.bucket, loc.key),
            "times": 1, "status": 403, "code": "AccessDenied",
        }));
    }
}

impl CatalogHarness for Local<'_> {
    async fn deny_next_read(&self) {
        self.aws.inject_fault(json!({
            "target": "DynamoDB_20120810.GetItem", "times": 1, "status": 400, "code": "AccessDeniedException",
        }));
    }
}

impl AlertHarness for Local<'_> {
    async fn received(&self) -> Vec<(String, String, Option<String>)> {
        let inbox = self.inbox.expect("an inbox");
        inbox.alerts().await.into_iter().map(|r| (r.subject, r.body, r.attributes.get("severity").cloned())).collect()
    }

    async fn deny_next(&self) {
        self.aws.inject_fault(json!({
            "method": "POST", "path_contains": "/", "times": 1, "status": 403, "code": "AuthorizationError",
        }));
    }

    async fn throttle_next(&self) {
        // The SDK retries a throttled call: every attempt is throttled.
        self.aws.inject_fault(json!({
            "method": "POST", "path_contains": "/", "times": 3, "status": 400, "code": "Throttled",
        }));
    }
}

impl DeadLetterHarness for Local<'_> {
    async fn received(&self) -> Vec<serde_json::Value> {
        self.stack.dead_letters().await
    }

    async fn fail_next(&self) {
        self.aws.inject_fault(json!({
            "target": "AmazonSQS.SendMessage", "times": 1, "status": 400, "code": "AccessDenied",
        }));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_adapters_keep_every_port_contract_on_the_local_aws() {
    let aws = LocalAws::start();
    let symmetric = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(&aws, &[("calls", &[&symmetric])]).await;
    let sdk = aws.config(REGION).await;
    let local = Local { aws: &aws, stack: &stack, inbox: None };

    // Objects: the vault bucket (versioned, as the template makes it) and
    // a bucket without versioning.
    let unversioned = format!("{}-plain", stack.vault);
    stack.s3.create_bucket().bucket(&unversioned).send().await.expect("CreateBucket");
    vault::contract::objects::object_store(&S3Objects::from_config(&sdk), &local, &stack.vault, &unversioned).await;
    aws.clear_faults();

    // The catalog: the template's table.
    let (a, b) =
        (aws.create_key("SYMMETRIC_DEFAULT", REGION).await, aws.create_key("SYMMETRIC_DEFAULT", DR_REGION).await);
    vault::contract::catalog::catalog(&DynamoCatalog::from_config(&sdk, &stack.table), &local, &a, &b).await;
    vault::contract::catalog::retention(&DynamoCatalog::from_config(&sdk, &stack.table), &a, &b).await;
    vault::contract::catalog::browse(&DynamoCatalog::from_config(&sdk, &stack.table), &a).await;
    vault::contract::catalog::tags_due(&DynamoCatalog::from_config(&sdk, &stack.table), &a, &b).await;
    aws.clear_faults();

    // Keys, their states as the launcher's KMS enforces them.
    let kms = aws.kms().await;
    let fixture = KeyFixture {
        symmetric: symmetric.clone(),
        rsa: aws.create_key("RSA_2048", REGION).await,
        disabled: aws.create_key("SYMMETRIC_DEFAULT", REGION).await,
        pending_deletion: aws.create_key("SYMMETRIC_DEFAULT", REGION).await,
        missing: symmetric.rsplit_once('/').map(|(p, _)| format!("{p}/00000000-0000-4000-8000-000000000000")).unwrap(),
    };
    kms.disable_key().key_id(&fixture.disabled).send().await.expect("DisableKey");
    kms.schedule_key_deletion()
        .key_id(&fixture.pending_deletion)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("ScheduleKeyDeletion");
    vault::contract::keys::keys(&AwsKms::new(&sdk), &fixture).await;

    // Dead letters: the template's queue.
    vault::contract::dead_letters::dead_letters(&DeadLetterQueue::from_config(&sdk, &stack.queue_url), &local).await;
    aws.clear_faults();

    // Alerts: a topic read through a subscribed queue.
    let inbox = Inbox::new(&stack, "contract").await;
    let local = Local { inbox: Some(&inbox), ..local };
    vault::contract::alerts::alerts(&AlertTopic::from_config(&sdk, &inbox.topic_arn), &local).await;
    aws.clear_faults();
}
