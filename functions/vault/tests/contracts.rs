//! Every contract suite against the in-memory twins: the same suites run
//! against the AWS adapters on the local AWS in `tests/tests/contracts.rs`,
//! so the twins the protocol tests rely on behave as the adapters do.

use vault::contract::alerts::AlertHarness;
use vault::contract::catalog::CatalogHarness;
use vault::contract::dead_letters::DeadLetterHarness;
use vault::contract::keys::KeyFixture;
use vault::contract::objects::ObjectHarness;
use vault::memory::{MemoryAlerts, MemoryCatalog, MemoryDeadLetters, MemoryKms, MemoryObjects};
use vault::ports::alerts::AlertError;
use vault::ports::catalog::CatalogError;
use vault::ports::dead_letters::DeadLetterError;
use vault::ports::keys::KeyState;
use vault::ports::objects::{S3Error, S3Location};

struct Objects(MemoryObjects);

impl ObjectHarness for Objects {
    async fn open_uploads(&self, _bucket: &str) -> usize {
        self.0.open_uploads()
    }
    async fn tags(&self, loc: &S3Location, version: Option<&str>) -> Vec<(String, String)> {
        self.0.tags_of(loc, version)
    }
    async fn deny_next_read(&self, loc: &S3Location) {
        let denied = S3Error::AccessDenied { location: loc.to_string(), detail: "AccessDenied".into() };
        self.0.faults.fail_next("read", denied);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_object_twin_keeps_the_object_contract() {
    let store = MemoryObjects::new();
    store.create_bucket("versioned", true);
    store.create_bucket("unversioned", false);
    vault::contract::objects::object_store(&store, &Objects(store.clone()), "versioned", "unversioned").await;
}

struct Catalog(MemoryCatalog);

impl CatalogHarness for Catalog {
    async fn deny_next_read(&self) {
        let denied = CatalogError::AccessDenied { table: "catalog".into(), detail: "AccessDeniedException".into() };
        self.0.faults.fail_next("recording", denied);
    }
}

#[tokio::test]
async fn the_catalog_twin_keeps_the_catalog_contract() {
    let catalog = MemoryCatalog::new();
    let (a, b) =
        ("arn:aws:kms:us-east-1:111122223333:key/contract-a", "arn:aws:kms:us-west-2:111122223333:key/contract-b");
    vault::contract::catalog::catalog(&catalog, &Catalog(catalog.clone()), a, b).await;
    vault::contract::catalog::retention(&catalog, a, b).await;
    vault::contract::catalog::browse(&catalog, a).await;
    vault::contract::catalog::tags_due(&catalog, a, b).await;
}

#[tokio::test]
async fn the_key_twin_keeps_the_key_contract() {
    let kms = MemoryKms::new();
    let fixture = KeyFixture {
        symmetric: kms.create_symmetric("us-east-1"),
        rsa: kms.create_rsa("us-east-1"),
        disabled: kms.create_symmetric("us-east-1"),
        pending_deletion: kms.create_symmetric("us-east-1"),
        missing: "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-999999999999".into(),
    };
    kms.set_state(&fixture.disabled, KeyState::Disabled);
    kms.set_state(&fixture.pending_deletion, KeyState::PendingDeletion);
    vault::contract::keys::keys(&kms, &fixture).await;
}

struct Alerts(MemoryAlerts);

impl AlertHarness for Alerts {
    async fn received(&self) -> Vec<(String, String, Option<String>)> {
        self.0
            .published()
            .into_iter()
            .map(|p| (p.subject.clone(), p.body.clone(), p.attribute("severity").map(str::to_string)))
            .collect()
    }
    async fn deny_next(&self) {
        let e = AlertError { topic: "t".into(), detail: "AuthorizationError".into(), retryable: false };
        self.0.faults.fail_next("publish", e);
    }
    async fn throttle_next(&self) {
        let e = AlertError { topic: "t".into(), detail: "Throttled".into(), retryable: true };
        self.0.faults.fail_next("publish", e);
    }
}

#[tokio::test]
async fn the_alert_twin_keeps_the_alert_contract() {
    let topic = MemoryAlerts::new();
    vault::contract::alerts::alerts(&topic, &Alerts(topic.clone())).await;
}

struct Letters(MemoryDeadLetters);

impl DeadLetterHarness for Letters {
    async fn received(&self) -> Vec<serde_json::Value> {
        self.0.letters()
    }
    async fn fail_next(&self) {
        self.0.faults.fail_next("send", DeadLetterError { queue: "q".into(), detail: "refused".into() });
    }
}

#[tokio::test]
async fn the_dead_letter_twin_keeps_the_dead_letter_contract() {
    let queue = MemoryDeadLetters::new();
    vault::contract::dead_letters::dead_letters(&queue, &Letters(queue.clone())).await;
}
