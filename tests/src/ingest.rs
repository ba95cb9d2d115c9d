//! An encrypt-recording deployment on the local AWS, provisioned from
//! template.yaml itself (`infra/local/provision.py`: its buckets, catalog
//! table, queues and topic, and each function's environment), and the real
//! handler over the real SDK adapters, configured through
//! `Config::from_lookup` exactly as the Lambda reads its environment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use vault::config::FromSettings;

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use encrypt_recording::{Config, Handler, HandlerError};
use serde_json::{json, Value};
use vault::aws::DeadLetterQueue;
use vault::aws::DynamoCatalog as Catalog;

/// encrypt-recording's handler over the AWS adapters.
pub type AwsHandler = Handler<AwsKms, S3Objects, Catalog, DeadLetterQueue>;
use vault::aws::AwsKms;
use vault::aws::S3Objects;
use vault::ingest::RecordingEncryptor;
use vault::ports::catalog::{KeyUsage, KeyUsageCatalog, RecordingCatalog};
use vault::recording::{RecordingEntry, RecordingId};

use crate::{LocalAws, REGION};

/// The organisation every stack encrypts for.
pub const ORG: &str = "acme";

/// One deployment's resources.
pub struct Stack<'a> {
    pub aws: &'a LocalAws,
    /// The stack's name (its functions are `<name>-<binary>`).
    pub name: String,
    pub ingest: String,
    pub vault: String,
    /// Evidence reports (Object Lock).
    pub evidence: String,
    pub table: String,
    pub queue_url: String,
    /// RECORDING_KEYS as JSON: the template's when every type has the one
    /// key (`{"calls,chats": [...]}`), the test's own otherwise.
    pub recording_keys: String,
    pub s3: aws_sdk_s3::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// FRAME_LENGTH, when not the template's.
    pub frame_length: Option<u32>,
    /// The alert topic template.yaml creates.
    pub topic_arn: String,
    /// Each function's environment as template.yaml sets it, by binary.
    functions: HashMap<String, Vec<(&'static str, String)>>,
}

/// An environment variable's name for the `(&'static str, String)` pairs the
/// configs read (names come from template.yaml at run time).
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.push(n);
    n
}

fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("cv-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

impl<'a> Stack<'a> {
    /// Deploys template.yaml's storage as stack `cv-s-<pid>-<n>` through
    /// `infra/local/provision.py`; `keys` maps recording types to key ARNs
    /// (the template's RecordingKeyArn is the first; RECORDING_KEYS is
    /// `keys` as given, which may name several keys per type).
    pub async fn new(aws: &'a LocalAws, keys: &[(&str, &[&str])]) -> Stack<'a> {
        let tag = unique("s");
        let out = std::env::temp_dir().join(format!("{tag}-env"));
        let types: Vec<&str> = keys.iter().map(|(t, _)| *t).collect();
        let first_key = keys.iter().flat_map(|(_, k)| k.iter()).next().copied().unwrap_or_default();
        let mut cmd = std::process::Command::new(crate::root().join("infra/local/.venv/moto/bin/python"));
        cmd.arg(crate::root().join("infra/local/provision.py"))
            .args(["--stack", &tag, "--out", out.to_str().expect("utf-8 temp dir")])
            .args(["--param", &format!("Org={ORG}"), "--param", &format!("RecordingKeyArn={first_key}")])
            .args(["--param", &format!("RecordingTypes={}", types.join(","))])
            // The player's identity provider: the in-memory issuer of
            // `crate::playback` (a browser test starts a real one on
            // loopback and sets these again).
            .args(["--param", &format!("OidcIssuer={}", crate::playback::ISSUER)])
            .args(["--param", &format!("OidcClientId={}", crate::playback::CLIENT_ID)])
            .args(["--param", &format!("PlaybackAccess={}", crate::playback::access_for(&types))])
            .envs(aws.env());
        let run = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run provision.py");
        let _ = std::fs::remove_dir_all(&out);
        assert!(run.status.success(), "provision.py failed: {}", String::from_utf8_lossy(&run.stderr));
        let summary: Value = serde_json::from_slice(&run.stdout).expect("provision.py's summary");
        let resource = |logical: &str| {
            summary["resources"][logical]
                .as_str()
                .unwrap_or_else(|| panic!("template.yaml has no {logical}"))
                .to_string()
        };
        let functions: HashMap<String, Vec<(&'static str, String)>> = summary["functions"]
            .as_object()
            .expect("functions")
            .iter()
            .map(|(binary, f)| {
                let env = f["environment"].as_object().expect("environment");
                let env = env.iter().map(|(k, v)| (intern(k), v.as_str().expect("string").to_string())).collect();
                (binary.clone(), env)
            })
            .collect();
        let template_keys = keys.iter().all(|(_, k)| *k == [first_key]);
        let recording_keys = if template_keys {
            // What template.yaml writes, through the functions' own parser.
            let env: &Vec<(&'static str, String)> = &functions["encrypt-recording"];
            env.iter().find(|(k, _)| *k == "RECORDING_KEYS").expect("template.yaml sets RECORDING_KEYS").1.clone()
        } else {
            serde_json::to_string(&keys.iter().map(|(t, k)| (t.to_string(), k.to_vec())).collect::<HashMap<_, _>>())
                .expect("json")
        };
        Stack {
            aws,
            name: tag.clone(),
            ingest: resource("IngestBucket"),
            vault: resource("VaultBucket"),
            evidence: resource("EvidenceBucket"),
            table: resource("Catalog"),
            queue_url: resource("DeadLetterQueue"),
            topic_arn: resource("AlertTopic"),
            recording_keys,
            s3: aws.s3().await,
            ddb: aws.dynamodb().await,
            sqs: aws.sqs().await,
            frame_length: None,
            functions,
        }
    }

    /// `binary`'s environment as template.yaml sets it for this stack, with
    /// the test's RECORDING_KEYS and FRAME_LENGTH.
    pub fn function_env(&self, binary: &str) -> Vec<(&'static str, String)> {
        let mut env = self.functions.get(binary).unwrap_or_else(|| panic!("template.yaml has no {binary}")).clone();
        for (name, value) in env.iter_mut() {
            match *name {
                "RECORDING_KEYS" => *value = self.recording_keys.clone(),
                "FRAME_LENGTH" => {
                    if let Some(f) = self.frame_length {
                        *value = f.to_string();
                    }
                }
                "AWS_REGION" => *value = REGION.to_string(),
                _ => {}
            }
        }
        env
    }

    /// Sets `name` to `value` in every function's environment that has it
    /// (as a parameter change and a stack update would).
    pub fn set_env(&mut self, name: &str, value: &str) {
        for env in self.functions.values_mut() {
            for (k, v) in env.iter_mut() {
                if *k == name {
                    *v = value.to_string();
                }
            }
        }
    }

    /// encrypt-recording's environment, as template.yaml sets it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.function_env("encrypt-recording")
    }

    /// Uploads `body` as `key` and encrypts it through a fresh handler;
    /// panics unless it is encrypted.
    pub async fn encrypt(&self, key: &str, body: &[u8], content_type: &str) {
        let (etag, version) = self.upload(key, body, content_type).await;
        let v = self.invoke(self.event(key, &etag, &version, body.len())).await.expect("encrypt-recording");
        assert_eq!(v["recordings"][0]["outcome"], "encrypted", "{v}");
    }

    /// A fresh handler (a new container: empty key cache).
    pub async fn handler(&self) -> AwsHandler {
        let env: HashMap<_, _> = self.env().into_iter().collect();
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("config");
        let sdk = self.aws.config(REGION).await;
        let encryptor = RecordingEncryptor::new(
            AwsKms::new(&sdk),
            S3Objects::from_config(&sdk),
            Catalog::from_config(&sdk, &config.catalog_table),
            config.settings,
        );
        Handler::new(encryptor, config.dead_letter_queue_url.map(|u| DeadLetterQueue::from_config(&sdk, u)))
    }

    /// The catalog.
    pub async fn catalog(&self) -> Catalog {
        Catalog::from_config(&self.aws.config(REGION).await, &self.table)
    }

    /// Uploads a recording; returns (ETag without quotes, version id).
    pub async fn upload(&self, key: &str, body: &[u8], content_type: &str) -> (String, String) {
        let out = self
            .s3
            .put_object()
            .bucket(&self.ingest)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("PutObject");
        (out.e_tag.expect("etag").trim_matches('"').to_string(), out.version_id.expect("versioned bucket"))
    }

    /// The S3 event S3 would send for that upload.
    pub fn event(&self, key: &str, etag: &str, version: &str, size: usize) -> Value {
        s3_event(&self.ingest, &s3_encode_key(key), etag, Some(version), size)
    }

    /// Invokes a fresh handler with `event`.
    pub async fn invoke(&self, event: Value) -> Result<Value, HandlerError> {
        self.invoke_with(&self.handler().await, event).await
    }

    /// Invokes `handler` with `event`, a 15-minute deadline ahead.
    pub async fn invoke_with(&self, handler: &AwsHandler, event: Value) -> Result<Value, HandlerError> {
        static REQUESTS: AtomicUsize = AtomicUsize::new(0);
        let request_id = format!("test-request-{}", REQUESTS.fetch_add(1, Ordering::Relaxed));
        self.invoke_as(handler, event, &request_id).await
    }

    /// Invokes `handler` with `event` under `request_id` (Lambda retries an
    /// event under its original request id).
    pub async fn invoke_as(&self, handler: &AwsHandler, event: Value, request_id: &str) -> Result<Value, HandlerError> {
        let deadline_ms = (vault::time::unix_now() + 900) * 1000;
        handler.handle(event, deadline_ms, request_id).await
    }

    /// Every version (and delete marker) of `key` in `bucket`.
    pub async fn versions(&self, bucket: &str, key: &str) -> usize {
        let out = self.s3.list_object_versions().bucket(bucket).prefix(key).send().await.expect("ListObjectVersions");
        out.versions().iter().filter(|v| v.key() == Some(key)).count()
            + out.delete_markers().iter().filter(|v| v.key() == Some(key)).count()
    }

    /// The object's bytes, or `None` when it does not exist.
    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => Some(out.body.collect().await.expect("body").to_vec()),
            Err(_) => None,
        }
    }

    /// The `callvault-status` tag of the ingest object (latest version).
    pub async fn status_tag(&self, key: &str) -> Option<String> {
        let out = self.s3.get_object_tagging().bucket(&self.ingest).key(key).send().await.ok()?;
        out.tag_set().iter().find(|t| t.key() == "callvault-status").map(|t| t.value().to_string())
    }

    /// Multipart uploads still open in the vault bucket.
    pub async fn open_uploads(&self) -> usize {
        let out = self.s3.list_multipart_uploads().bucket(&self.vault).send().await.expect("ListMultipartUploads");
        out.uploads().len()
    }

    /// The catalog's entry for a recording.
    pub async fn entry(&self, recording_type: &str, recording_id: &str) -> Option<RecordingEntry> {
        let id = RecordingId { recording_type: recording_type.into(), recording_id: recording_id.into() };
        self.catalog().await.recording(&id).await.expect("catalog read")
    }

    /// The catalog's usage of a key.
    pub async fn usage(&self, key_arn: &str) -> Option<KeyUsage> {
        self.catalog().await.key_usage(key_arn).await.expect("catalog read")
    }

    /// Messages on the dead-letter queue (received, not deleted).
    pub async fn dead_letters(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .send()
                .await
                .expect("ReceiveMessage");
            let msgs = out.messages();
            if msgs.is_empty() {
                return all;
            }
            for m in msgs {
                all.push(serde_json::from_str(m.body().unwrap_or("null")).expect("dead letter JSON"));
            }
        }
    }
}

/// Creates a bucket with versioning enabled, as template.yaml does (for the
/// benchmarks, which make their own).
pub async fn create_versioned_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.expect("CreateBucket");
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .expect("PutBucketVersioning");
}

/// Creates the catalog table as template.yaml does (pk, sk; on demand), for
/// the benchmarks.
pub async fn create_catalog_table(ddb: &aws_sdk_dynamodb::Client, table: &str) {
    let attr = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().expect("attr")
    };
    let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().expect("key");
    ddb.create_table()
        .table_name(table)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable");
}

/// Encodes a key as S3 does in event notifications.
pub fn s3_encode_key(key: &str) -> String {
    inbound::s3_event::encode_event_key(key)
}

/// An S3 ObjectCreated:Put notification for one object (key as encoded).
pub fn s3_event(bucket: &str, encoded_key: &str, etag: &str, version: Option<&str>, size: usize) -> Value {
    let mut object = json!({ "key": encoded_key, "size": size, "eTag": etag, "sequencer": "0055AED6DCD90281E5" });
    if let Some(v) = version {
        object["versionId"] = json!(v);
    }
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-23T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "AWS:AIDAEXAMPLE" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": { "x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8" },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "callvault-ingest",
            "bucket": { "name": bucket, "ownerIdentity": { "principalId": "A3NL1KOZZKExample" }, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": object
        }
    }]})
}
