//! Streaming encrypt and decrypt throughput at 4 KiB, 64 KiB and 1 MiB frames,
//! beside bare aws-lc-rs AES-256-GCM sealing of the same buffer in the same
//! run. Target: at most 10% format overhead at 64 KiB frames.
//!
//! `cargo bench -p envelope` (payload: CALLVAULT_BENCH_MIB, default 256 MiB).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use envelope::*;

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn main() {
    let mib: usize = std::env::var("CALLVAULT_BENCH_MIB").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let len = mib << 20;
    let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let key = DataKey::generate();
    let runs = 5;

    // Bare AES-256-GCM: one seal over the whole buffer, in place.
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).unwrap());
    let mut buf = data.clone();
    let bare = best_of(runs, || {
        let tag =
            aead.seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), &mut buf).unwrap();
        let _ = std::hint::black_box(tag);
    });
    let bare_gbps = gbps(len, bare);
    println!("payload {mib} MiB, best of {runs} runs");
    println!("bare aws-lc-rs AES-256-GCM seal       {bare_gbps:7.2} GB/s");

    let edk = EncryptedDataKey { provider_id: "bench".into(), provider_info: vec![1; 80], ciphertext: vec![2; 184] };
    let mut out = Vec::with_capacity(len + len / 64 + 4096);
    for frame in [4096u32, 65536, 1 << 20] {
        let enc_time = best_of(runs, || {
            out.clear();
            let encryptor = MessageEncryptor::new(MessageSpec {
                data_key: &key,
                encryption_context: [("org", "bench")].into_iter().collect(),
                encrypted_data_keys: vec![edk.clone()],
                frame_length: frame,
            })
            .unwrap();
            let mut w = EncryptingWriter::new(&mut out, encryptor).unwrap();
            // Feed in 64 KiB writes, as a file or socket copy does.
            for chunk in data.chunks(64 * 1024) {
                w.write_all(chunk).unwrap();
            }
            w.finish().unwrap();
        });
        let message = out.clone();
        let mut sink = vec![0u8; 64 * 1024];
        let dec_time = best_of(runs, || {
            let pending = PendingMessage::read_header(&message[..], &Limits::default()).unwrap();
            let mut r = pending.decrypt(&key).unwrap();
            let mut total = 0;
            loop {
                let n = r.read(&mut sink).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
            assert_eq!(total, len);
        });
        let (e, d) = (gbps(len, enc_time), gbps(len, dec_time));
        println!(
            "frame {:>7}: encrypt {e:7.2} GB/s ({:5.1}% of bare)  decrypt {d:7.2} GB/s ({:5.1}% of bare)",
            frame,
            100.0 * e / bare_gbps,
            100.0 * d / bare_gbps
        );
        println!("RESULT frame={frame} encrypt_gbps={e:.3} decrypt_gbps={d:.3} bare_gbps={bare_gbps:.3}");
    }
}
