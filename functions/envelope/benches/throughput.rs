//! Streaming encrypt and decrypt throughput at 4 KiB, 64 KiB and 1 MiB frames,
//! beside bare aws-lc-rs AES-256-GCM sealing of the same buffer in the same
//! run. Target: at most 10% format overhead at 64 KiB frames.
//!
//! The configurations are measured in interleaved rounds (bare, then every
//! frame length, again and again) and the best of each is kept, so a change of
//! CPU clock or a noisy neighbour hurts them alike. Encryption is measured
//! twice: into a sink that drops the ciphertext (the format's own cost, what
//! the bare seal is compared with) and into a `Vec` (adds writing the whole
//! output to memory, as a caller that keeps it pays). Decryption likewise:
//! in place over a message already in memory (compared with the bare open of
//! the same buffer), and streamed through the `Read` adapter, which also
//! copies every ciphertext byte out of its source.
//!
//! `cargo bench -p envelope` (payload: CALLVAULT_BENCH_MIB, default 128 MiB;
//! rounds: CALLVAULT_BENCH_ROUNDS, default 15).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use envelope::*;

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn timed<F: FnOnce()>(best: &mut Duration, f: F) {
    let t = Instant::now();
    f();
    *best = (*best).min(t.elapsed());
}

fn encrypt_into<W: Write>(out: W, key: &DataKey, edk: &EncryptedDataKey, frame: u32, data: &[u8]) -> W {
    let encryptor = MessageEncryptor::new(MessageSpec {
        data_key: key,
        encryption_context: [("org", "bench")].into_iter().collect(),
        encrypted_data_keys: vec![edk.clone()],
        frame_length: frame,
    })
    .unwrap();
    let mut w = EncryptingWriter::new(out, encryptor).unwrap();
    // Fed in 64 KiB writes, as a file or socket copy does.
    for chunk in data.chunks(64 * 1024) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap()
}

struct Config {
    frame: u32,
    message: Vec<u8>,
    encrypt_sink: Duration,
    encrypt_vec: Duration,
    decrypt: Duration,
    in_place: Duration,
}

fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let mib = env("CALLVAULT_BENCH_MIB", 128);
    let rounds = env("CALLVAULT_BENCH_ROUNDS", 15);
    let len = mib << 20;
    let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let key = DataKey::generate();
    let edk = EncryptedDataKey { provider_id: "bench".into(), provider_info: vec![1; 80], ciphertext: vec![2; 184] };

    // Bare AES-256-GCM: one seal over the whole buffer, in place.
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).unwrap());
    let mut buf = data.clone();
    let mut bare = Duration::MAX;
    // And bare opening of that sealed buffer, the floor for decryption.
    let mut sealed = data.clone();
    let open_tag =
        aead.seal_in_place_separate_tag(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), &mut sealed).unwrap();
    sealed.extend_from_slice(open_tag.as_ref());
    let mut opened = sealed.clone();
    let mut bare_open = Duration::MAX;

    let mut configs: Vec<Config> = [4096u32, 65536, 1 << 20]
        .into_iter()
        .map(|frame| Config {
            frame,
            message: encrypt_into(Vec::new(), &key, &edk, frame, &data),
            encrypt_sink: Duration::MAX,
            encrypt_vec: Duration::MAX,
            decrypt: Duration::MAX,
            in_place: Duration::MAX,
        })
        .collect();
    let mut out = Vec::with_capacity(len + len / 64 + 4096);
    let mut sink = vec![0u8; 64 * 1024];

    for _ in 0..rounds {
        timed(&mut bare, || {
            let tag =
                aead.seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), &mut buf).unwrap();
            let _ = std::hint::black_box(tag);
        });
        opened.copy_from_slice(&sealed);
        timed(&mut bare_open, || {
            let plain = aead.open_in_place(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), &mut opened).unwrap();
            std::hint::black_box(plain);
        });
        for c in &mut configs {
            timed(&mut c.encrypt_sink, || {
                encrypt_into(std::io::sink(), &key, &edk, c.frame, &data);
            });
            out.clear();
            timed(&mut c.encrypt_vec, || {
                encrypt_into(&mut out, &key, &edk, c.frame, &data);
            });
            assert_eq!(out.len(), c.message.len());
            timed(&mut c.decrypt, || {
                let pending = PendingMessage::read_header(&c.message[..], &Limits::default()).unwrap();
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
            // The message already in memory, opened where it lies: the same
            // work as the bare open plus the format's own.
            let mut work = c.message.clone();
            timed(&mut c.in_place, || {
                let header = Header::parse(&work, &Limits::default()).unwrap();
                let layout = BodyLayout::new(&header, work.len() as u64).unwrap();
                let span = layout.whole();
                let opener = header.opener(&key).unwrap();
                let mut total = 0;
                for frame in opener.open_in_place(&layout, &span, &mut work[header.len..]) {
                    total += std::hint::black_box(frame.unwrap()).len();
                }
                assert_eq!(total, len);
            });
        }
    }

    let bare_gbps = gbps(len, bare);
    println!("payload {mib} MiB, best of {rounds} interleaved rounds");
    let open_gbps = gbps(len, bare_open);
    println!("bare aws-lc-rs AES-256-GCM seal          {bare_gbps:7.2} GB/s");
    println!("bare aws-lc-rs AES-256-GCM open          {open_gbps:7.2} GB/s");
    for c in &configs {
        let (e, v) = (gbps(len, c.encrypt_sink), gbps(len, c.encrypt_vec));
        let (d, p) = (gbps(len, c.decrypt), gbps(len, c.in_place));
        println!(
            "frame {:>7}: encrypt {e:5.2} GB/s ({:5.1}% of bare seal; into a Vec {v:5.2} GB/s)  \
             decrypt in place {p:5.2} GB/s ({:5.1}% of bare open; streamed by Read {d:5.2} GB/s, {:5.1}%)",
            c.frame,
            100.0 * e / bare_gbps,
            100.0 * p / open_gbps,
            100.0 * d / open_gbps,
        );
        println!(
            "RESULT frame={} encrypt_gbps={e:.3} encrypt_vec_gbps={v:.3} decrypt_gbps={d:.3} \
             decrypt_in_place_gbps={p:.3} bare_gbps={bare_gbps:.3} bare_open_gbps={open_gbps:.3}",
            c.frame
        );
    }
}
