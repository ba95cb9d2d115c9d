# callvault: the verbs. `make demo` runs the whole flow on the local AWS;
# `make test` runs every test (the command CI runs).
SHELL := /bin/bash
CARGO ?= cargo
VENV := infra/local/.venv

.PHONY: help setup build demo demo-check test lint iac unit e2e deploy-check bench-format bench-cli-memory bench-encrypt-recording bench-playback bench-rekey clean

help:  ## every verb, one line each
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):[^#]*## (.*)/\1\t\2/' | awk -F'\t' '{ printf "  make %-24s %s\n", $$1, $$2 }'

setup:  ## local AWS (moto) and the official AWS Encryption SDK peers, in project venvs
	bash infra/local/setup.sh

build:  ## every binary: the six Lambdas and the callvault CLI (debug)
	$(CARGO) build --workspace --bins

demo: setup build  ## the whole flow on the local AWS: recordings encrypted, played, re-keyed, held, erased; keys guarded
	bash infra/local/demo.sh

demo-check: setup build  ## the demo with a terminal: a WAV dropped in with the printed command plays within 10 s; lines <= 120; logs kept
	bash infra/local/demo_check.sh

lint:  ## rustfmt and clippy (warnings are errors) on every crate and target
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

iac:  ## cfn-lint on both templates and the SAM transform, sam validate --lint, the cfn-guard rules and their negative fixtures (installs its tools)
	bash infra/policy/check.sh

unit:  ## Rust unit, property and twin-based protocol tests of every crate but the end-to-end one: no Python, no emulator
	$(CARGO) test --workspace --exclude e2e

e2e: setup  ## the local AWS and everything that needs it: the launcher's and provisioner's own tests, then the end-to-end, contract, interoperability, IAM and cargo-lambda tests
	$(VENV)/moto/bin/python -m unittest infra/local/test_moto_launcher.py infra/local/test_provision.py infra/local/test_oidc_issuer.py
	$(CARGO) build --workspace --bins   # the binaries the end-to-end tests run (same features as `make build`)
	$(CARGO) test -p e2e

deploy-check:  ## docs/deploying.md's sam deploy against template.yaml's parameters; every code and setting in docs/
	$(CARGO) test -p e2e --test docs

test: setup lint iac unit e2e  ## every test: lint, iac, unit, e2e (what CI runs)

bench-format:  ## format throughput (GB/s) beside bare AES-256-GCM, and the Python SDK ratio
	bash benches/format.sh

bench-cli-memory:  ## peak RSS of callvault encrypt/decrypt on a 2 GiB file
	bash benches/cli_memory.sh

bench-encrypt-recording:  ## encrypt-recording on 1 GiB vs a plain S3 copy (ratio), and its peak RSS
	bash benches/encrypt_recording.sh

bench-playback:  ## playback of 64 KiB ranges of 1 GiB: S3 bytes read, time to first byte vs plain S3 (ratio)
	bash benches/playback.sh

bench-rekey:  ## re-keying 1 GiB vs a plain S3 copy (ratio), its peak RSS, and `callvault rekey --local` recordings/s for 1 MiB recordings
	bash benches/rekey.sh

clean:  ## build output and the project venvs
	$(CARGO) clean
	rm -rf $(VENV)
