//! No freed heap block keeps a data key: the KMS adapter's own copy (the
//! `Vec` it moves into an `Encrypt` request) and the SDK's (request JSON,
//! base64, response parsing) are all zeroed when freed, under the allocator
//! every binary installs (`vault::wipe`).
//!
//! This test binary installs the same wrapper around an inspecting
//! allocator, which looks at every block after the wrapper has zeroed it and
//! before the system takes it back; the KMS adapter talks to a KMS stub on
//! 127.0.0.1. The same calls with the wrapper bypassed (the allocator before
//! this change) are the control: there the inspector finds the key, raw and
//! in base64, in freed blocks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use envelope::{DataKey, EncryptionContext};
use vault::aws::keys::AwsKms;
use vault::ports::keys::KeyManagement;
use vault::wipe::ZeroAlloc;

/// Looks for the armed needles in every block freed while armed.
struct Inspect;

const NEEDLES: usize = 2;
const NEEDLE_LEN: usize = 44;
static ARMED: AtomicBool = AtomicBool::new(false);
static NEEDLE: [[AtomicU8; NEEDLE_LEN]; NEEDLES] = [const { [const { AtomicU8::new(0) }; NEEDLE_LEN] }; NEEDLES];
static NEEDLE_LENS: [AtomicUsize; NEEDLES] = [const { AtomicUsize::new(0) }; NEEDLES];
static FREED: AtomicUsize = AtomicUsize::new(0);
static FOUND: AtomicUsize = AtomicUsize::new(0);

fn contains(block: &[u8], n: usize) -> bool {
    let len = NEEDLE_LENS[n].load(Ordering::Relaxed);
    if len == 0 || block.len() < len {
        return false;
    }
    let first = NEEDLE[n][0].load(Ordering::Relaxed);
    block
        .windows(len)
        .any(|w| w[0] == first && w.iter().enumerate().all(|(i, b)| *b == NEEDLE[n][i].load(Ordering::Relaxed)))
}

unsafe impl GlobalAlloc for Inspect {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Relaxed) {
            // SAFETY: the block is still allocated: it is handed back below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            FREED.fetch_add(1, Ordering::Relaxed);
            if (0..NEEDLES).any(|n| contains(block, n)) {
                FOUND.fetch_add(1, Ordering::Relaxed);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Whether freed blocks go through the wiping wrapper (the binaries'
/// allocator) or straight to the inspector (the control).
static WIPE: AtomicBool = AtomicBool::new(true);
static WIPING: ZeroAlloc<Inspect> = ZeroAlloc(Inspect);

struct Switch;

unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { WIPING.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WIPE.load(Ordering::Relaxed) {
            unsafe { WIPING.dealloc(ptr, layout) }
        } else {
            unsafe { Inspect.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: Switch = Switch;

fn arm(needles: [&[u8]; NEEDLES]) {
    for (n, needle) in needles.iter().enumerate() {
        for (i, b) in needle.iter().enumerate() {
            NEEDLE[n][i].store(*b, Ordering::Relaxed);
        }
        NEEDLE_LENS[n].store(needle.len(), Ordering::Relaxed);
    }
    FREED.store(0, Ordering::Relaxed);
    FOUND.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::SeqCst);
}

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000001";
const KEY: [u8; 32] = *b"\x9c\x11callvault-data-key-0123456789\xe7";
const KEY_BASE64: &str = "nBFjYWxsdmF1bHQtZGF0YS1rZXktMDEyMzQ1Njc4Oec=";

/// A KMS on 127.0.0.1 that answers `Encrypt` and `GenerateDataKey` (with
/// [`KEY`] as the plaintext) for `requests` requests.
fn kms_stub(requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    std::thread::spawn(move || {
        let mut served = 0;
        for stream in listener.incoming() {
            let mut stream = stream.expect("a connection");
            let mut reader = BufReader::new(stream.try_clone().expect("a clone"));
            // Keep-alive: several requests per connection.
            while served < requests {
                let (mut target, mut length) = (String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).expect("a header line") == 0 {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("x-amz-target:") {
                        target = v.trim().to_string();
                    }
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().expect("a length");
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                if target.is_empty() {
                    break;
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("the body");
                let answer = if target.ends_with("generatedatakey") {
                    format!(r#"{{"CiphertextBlob":"AAEC","Plaintext":"{KEY_BASE64}","KeyId":"{ARN}"}}"#)
                } else {
                    format!(r#"{{"CiphertextBlob":"AAEC","KeyId":"{ARN}","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#)
                };
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                )
                .expect("the answer");
                served += 1;
            }
            if served >= requests {
                break;
            }
        }
    });
    endpoint
}

/// Wraps a data key under KMS and has KMS generate one, with the freed
/// blocks inspected; returns (blocks freed, blocks holding the key).
async fn exercise(wipe: bool) -> (usize, usize) {
    let endpoint = kms_stub(2);
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kms::config::Credentials::new("testing", "testing", None, None, "stub"))
        .build();
    let kms = AwsKms::from_client(aws_sdk_kms::Client::from_conf(config));
    let context: EncryptionContext = [("org", "acme")].into_iter().collect();
    let key = DataKey::from_slice(&KEY).expect("32 bytes");

    WIPE.store(wipe, Ordering::SeqCst);
    arm([&KEY, KEY_BASE64.as_bytes()]);
    // Our copy goes into the request; the SDK serialises it and frees both.
    kms.wrap_data_key(ARN, &key, &context).await.expect("the stub encrypts");
    // The SDK parses the key out of the answer's JSON; we keep it in a DataKey.
    let generated = kms.generate_data_key(ARN, &context).await.expect("the stub generates");
    assert_eq!(generated.data_key.expose(), &KEY);
    drop(generated);
    drop(key);
    drop(kms);
    ARMED.store(false, Ordering::SeqCst);
    WIPE.store(true, Ordering::SeqCst);
    (FREED.load(Ordering::SeqCst), FOUND.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "current_thread")]
async fn no_freed_block_keeps_a_data_key_handed_to_or_received_from_kms() {
    assert_eq!(KEY_BASE64.len(), NEEDLE_LEN);
    // The control: without wiping, the SDK's and the adapter's copies of
    // the key are there to be found in freed memory.
    let (freed, found) = exercise(false).await;
    assert!(freed > 100, "the inspector saw {freed} blocks freed: it is not looking");
    assert!(found > 0, "without wiping, no freed block held the key: the inspector cannot see what it looks for");
    // The binaries' allocator: none.
    let (freed, found) = exercise(true).await;
    assert!(freed > 100, "the inspector saw {freed} blocks freed");
    assert_eq!(found, 0, "{found} of {freed} freed blocks still held the data key");
}
