//! Replays every checked-in corpus (`fuzz/corpus/<target>/`: the seeds and
//! what the campaign kept, minimised) through its target, so a change that
//! breaks an invariant on any input the fuzzer ever found interesting fails
//! `make test`, with no fuzzer installed.

use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(target)
}

#[test]
fn every_target_replays_its_corpus() {
    for (name, run) in fuzz_harness::TARGETS {
        let dir = corpus(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name}: {} breaks an invariant", path.display());
            count += 1;
        }
        assert!(count >= 5, "{name}: only {count} inputs in {}", dir.display());
    }
}

#[test]
fn the_message_seeds_decrypt_so_mutations_reach_the_frames() {
    let dir = corpus("decrypt_stream");
    let seeds: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")))
        .collect();
    assert!(seeds.len() >= 8);
    for path in seeds {
        let message = std::fs::read(&path).expect("a seed");
        assert!(fuzz_harness::decrypt_whole(&message).is_some(), "{} does not decrypt", path.display());
    }
}

#[test]
fn the_inputs_that_found_bugs_stay_in_their_corpus() {
    // campaign.sh's merge keeps `seed-*` and `regression-*` files; a
    // regression input that disappears would let its bug come back unseen.
    const FOUND_BUGS: &[(&str, &str)] = &[("s3_event", "regression-etag-with-quote")];
    for (target, name) in FOUND_BUGS {
        let path = corpus(target).join(name);
        assert!(path.exists(), "{} is gone", path.display());
    }
}
