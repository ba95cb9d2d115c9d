//! Messages written by the official AWS Encryption SDK (Python 4.x, raw AES
//! keyring; `tests/vectors/generate.py`), checked in with their wrapping keys
//! and plaintexts, decrypted here with no Python and no KMS: frame lengths
//! 128, 4 KiB and 64 KiB; empty, one-byte, exact-multiple and several-frame
//! plaintexts; one to three encrypted data keys; empty, ordinary and ~10 KiB
//! encryption contexts.
//!
//! The raw AES unwrap below is test-only and follows the keyring
//! specification (framework/raw-aes-keyring.md): the provider id is the key
//! namespace; the provider info is the key name, the tag length in bits and
//! the IV length (both u32, big-endian) and the IV; the ciphertext is the
//! wrapped key then the tag; the AAD is the serialized encryption context.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use envelope::{BodyLayout, DataKey, EncryptedDataKey, EncryptionContext, Header, Limits, PendingMessage, RangeReader};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Keys {
    namespace: String,
    by_name: BTreeMap<String, Vec<u8>>,
}

fn keys() -> Keys {
    let v = json(&dir().join("keys.json"));
    let by_name = v["keys"]
        .as_object()
        .expect("a keys object")
        .iter()
        .map(|(name, hex_key)| (name.clone(), hex::decode(hex_key.as_str().expect("hex")).expect("hex")))
        .collect();
    Keys { namespace: v["namespace"].as_str().expect("a namespace").to_string(), by_name }
}

/// The raw AES keyring's OnDecrypt for one encrypted data key: the key's
/// name and the data key, or why not.
fn raw_aes_unwrap(
    keys: &Keys,
    edk: &EncryptedDataKey,
    context: &EncryptionContext,
) -> Result<(String, DataKey), String> {
    if edk.provider_id != keys.namespace {
        return Err(format!("provider id {:?} is not the namespace", edk.provider_id));
    }
    let info = &edk.provider_info;
    let fixed = 4 + 4 + 12;
    let name_len = info.len().checked_sub(fixed).ok_or("provider info too short")?;
    let (name, rest) = info.split_at(name_len);
    let tag_bits = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
    let iv_len = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
    if (tag_bits, iv_len) != (128, 12) {
        return Err(format!("tag of {tag_bits} bits, IV of {iv_len} bytes"));
    }
    let name = String::from_utf8(name.to_vec()).map_err(|_| "key name not UTF-8")?;
    let wrapping = keys.by_name.get(&name).ok_or(format!("no wrapping key named {name:?}"))?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, wrapping).map_err(|_| "wrapping key length")?);
    let nonce = Nonce::try_assume_unique_for_key(&rest[8..]).map_err(|_| "IV")?;
    let aad = context.serialize().map_err(|e| e.to_string())?;
    let mut sealed = edk.ciphertext.clone();
    let opened = key.open_in_place(nonce, Aad::from(&aad[..]), &mut sealed).map_err(|_| "the wrap does not open")?;
    Ok((name, DataKey::from_slice(opened).ok_or("not a 32-byte data key")?))
}

fn context_of(v: &Value) -> EncryptionContext {
    v.as_object()
        .expect("a context object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_string()))
        .collect()
}

struct Vector {
    name: String,
    message: Vec<u8>,
    plaintext: Vec<u8>,
    frame_length: u32,
    context: EncryptionContext,
    keys: Vec<String>,
}

fn vectors() -> Vec<Vector> {
    let manifest = json(&dir().join("manifest.json"));
    assert_eq!(manifest["suite"], "0x0478");
    let read = |rel: &Value| {
        let path = dir().join(rel.as_str().expect("a path"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    manifest["vectors"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| Vector {
            name: v["name"].as_str().expect("a name").to_string(),
            message: read(&v["message"]),
            plaintext: read(&v["plaintext"]),
            frame_length: v["frame_length"].as_u64().expect("a frame length") as u32,
            context: context_of(&v["encryption_context"]),
            keys: v["keys"].as_array().expect("a list").iter().map(|k| k.as_str().expect("a name").into()).collect(),
        })
        .collect()
}

#[test]
fn the_vectors_cover_the_shapes_the_issue_names() {
    let all = vectors();
    assert!(all.len() >= 12);
    let frames: std::collections::BTreeSet<u32> = all.iter().map(|v| v.frame_length).collect();
    assert_eq!(frames.into_iter().collect::<Vec<_>>(), [128, 4096, 65536]);
    assert!(all.iter().any(|v| v.plaintext.is_empty()));
    assert!(all.iter().any(|v| v.plaintext.len() == 1));
    assert!(all.iter().any(|v| !v.plaintext.is_empty() && v.plaintext.len() % v.frame_length as usize == 0));
    assert!(all.iter().any(|v| v.plaintext.len() > 2 * v.frame_length as usize));
    assert!(all.iter().any(|v| v.keys.len() == 1) && all.iter().any(|v| v.keys.len() >= 3));
    assert!(all.iter().any(|v| v.context.is_empty()));
    assert!(all.iter().any(|v| v.context.serialize().expect("serializes").len() > 8 * 1024));
}

#[test]
fn every_official_vector_decrypts_with_every_one_of_its_data_keys() {
    let keys = keys();
    for v in vectors() {
        let pending = PendingMessage::read_header(&v.message[..], &Limits::default())
            .unwrap_or_else(|e| panic!("{}: header: {e}", v.name));
        let header = pending.header().clone();
        assert_eq!(header.frame_length, v.frame_length, "{}", v.name);
        assert_eq!(header.encryption_context, v.context, "{}", v.name);
        assert_eq!(header.encrypted_data_keys.len(), v.keys.len(), "{}", v.name);
        let mut unwrapped = Vec::new();
        for edk in &header.encrypted_data_keys {
            let (name, key) =
                raw_aes_unwrap(&keys, edk, &header.encryption_context).unwrap_or_else(|e| panic!("{}: {e}", v.name));
            unwrapped.push((name, key));
        }
        // One encrypted data key per wrapping key (the SDK does not keep the
        // keyrings' order in the header).
        let mut names: Vec<&str> = unwrapped.iter().map(|(n, _)| n.as_str()).collect();
        let mut expected: Vec<&str> = v.keys.iter().map(String::as_str).collect();
        names.sort_unstable();
        expected.sort_unstable();
        assert_eq!(names, expected, "{}", v.name);
        // Every encrypted data key wraps the same data key: each decrypts alone.
        for (name, key) in &unwrapped {
            let reader = PendingMessage::read_header(&v.message[..], &Limits::default()).expect("parsed once");
            let mut out = Vec::new();
            let mut reader = reader.decrypt(key).unwrap_or_else(|e| panic!("{} with {name}: {e}", v.name));
            reader.read_to_end(&mut out).unwrap_or_else(|e| panic!("{} with {name}: {e}", v.name));
            assert!(reader.is_complete());
            assert!(out == v.plaintext, "{} with {name}: the plaintext differs", v.name);
        }
        drop(pending);
    }
}

#[test]
fn official_vectors_decrypt_by_range_from_their_covering_frames() {
    let keys = keys();
    for v in vectors().into_iter().filter(|v| v.plaintext.len() > 2) {
        let header = Header::parse(&v.message, &Limits::default()).expect("a header");
        let (_, key) =
            raw_aes_unwrap(&keys, &header.encrypted_data_keys[0], &header.encryption_context).expect("unwraps");
        let layout = BodyLayout::new(&header, v.message.len() as u64).expect("a layout");
        assert_eq!(layout.plaintext_len(), v.plaintext.len() as u64, "{}", v.name);
        let len = v.plaintext.len() as u64;
        for range in [0..1, len / 3..len - 1, len - 1..len, 0..len] {
            let span = layout.span(range.clone()).expect("a span");
            let bytes = &v.message[span.ciphertext.start as usize..span.ciphertext.end as usize];
            let mut out = Vec::new();
            RangeReader::new(bytes, header.opener(&key).expect("the key"), layout, &span)
                .read_to_end(&mut out)
                .unwrap_or_else(|e| panic!("{} {range:?}: {e}", v.name));
            assert!(out == v.plaintext[range.start as usize..range.end as usize], "{} {range:?}", v.name);
        }
    }
}

#[test]
fn a_flipped_bit_in_an_official_vector_is_refused() {
    let keys = keys();
    for v in vectors() {
        let header = Header::parse(&v.message, &Limits::default()).expect("a header");
        let (_, key) =
            raw_aes_unwrap(&keys, &header.encrypted_data_keys[0], &header.encryption_context).expect("unwraps");
        for at in [header.len / 2, header.len + 5, v.message.len() - 1] {
            let mut bad = v.message.clone();
            bad[at] ^= 0x01;
            let refused = match PendingMessage::read_header(&bad[..], &Limits::default()) {
                Err(_) => true,
                Ok(p) => match p.decrypt(&key) {
                    Err(_) => true,
                    Ok(mut r) => r.read_to_end(&mut Vec::new()).is_err(),
                },
            };
            assert!(refused, "{}: a flip at byte {at} was accepted", v.name);
        }
    }
}
