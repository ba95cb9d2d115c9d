#!/usr/bin/env bash
# The whole flow on the local AWS: start it, create a customer key, make a real
# WAV recording, encrypt it with callvault, inspect it, decrypt it with the
# official aws-encryption-cli and with callvault, and seek into it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/infra/local/.venv"
bin="$root/target/debug/callvault"
work="$(mktemp -d)"
trap 'kill "$moto_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting the local AWS (moto + KMS fixes) on 127.0.0.1"
"$venv/moto/bin/python" "$root/infra/local/moto_launcher.py" --port 0 >"$work/moto.out" 2>"$work/moto.err" &
moto_pid=$!
for _ in $(seq 1 120); do
  grep -q '^READY ' "$work/moto.out" 2>/dev/null && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.err" >&2; echo "the local AWS did not start" >&2; exit 1; }
  sleep 0.25
done
endpoint="$(sed -n 's/^READY //p' "$work/moto.out")"
[ -n "$endpoint" ] || { echo "the local AWS did not start in 30 s" >&2; exit 1; }
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
echo "local AWS at $endpoint"

step "creating the customer's KMS key"
key="$("$venv/moto/bin/python" -c '
import boto3
kms = boto3.client("kms")
arn = kms.create_key(Description="callvault demo recordings key")["KeyMetadata"]["Arn"]
kms.create_alias(AliasName="alias/callvault-demo", TargetKeyId=arn)
print(arn)')"
echo "$key"

step "recording a 30 s call (8 kHz, 16-bit mono WAV)"
"$venv/moto/bin/python" - "$work/call.wav" <<'PY'
import math, struct, sys, wave
rate, secs = 8000, 30
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    frames = bytearray()
    for i in range(rate * secs):
        t = i / rate
        tone = 440 if int(t) % 2 == 0 else 660   # two "speakers" taking turns
        frames += struct.pack("<h", int(9000 * math.sin(2 * math.pi * tone * t)))
    w.writeframes(bytes(frames))
PY
ls -l "$work/call.wav"

step "callvault encrypt (AWS Encryption SDK v2 message, suite 0x0478, 64 KiB frames)"
"$bin" encrypt --key "$key" --context org=acme --context recording_type=calls \
  --context recording_id=demo-0001 --context content_type=audio/wav "$work/call.wav" "$work/call.wav.esdk"
ls -l "$work/call.wav.esdk"

step "callvault inspect"
"$bin" inspect "$work/call.wav.esdk"

step "decrypt with the official aws-encryption-cli (no callvault involved)"
"$venv/esdk-cli/bin/aws-encryption-cli" --decrypt-unsigned -i "$work/call.wav.esdk" -o "$work/by-official-cli.wav" \
  -w "key=$key" -c org=acme recording_id=demo-0001 -S
cmp "$work/call.wav" "$work/by-official-cli.wav" && echo "official CLI: byte-identical"

step "decrypt with callvault (requiring the org and recording id)"
"$bin" decrypt --context org=acme --context recording_id=demo-0001 "$work/call.wav.esdk" "$work/by-callvault.wav"
cmp "$work/call.wav" "$work/by-callvault.wav" && echo "callvault: byte-identical"

step "seek: seconds 20-21 only (bytes 320044-336043), read from the frames that cover them"
"$bin" decrypt --range 320044-336043 "$work/call.wav.esdk" "$work/seek.raw"
cmp <(tail -c +320045 "$work/call.wav" | head -c 16000) "$work/seek.raw" && echo "seek: the 16000 bytes of second 20 match"

step "a wrong recording id is refused, and leaves no output"
if "$bin" decrypt --context recording_id=someone-else "$work/call.wav.esdk" "$work/wrong.wav"; then
  echo "unexpected success" >&2; exit 1
fi
[ ! -e "$work/wrong.wav" ] && echo "no output written"

step "done: the key owner's KMS call log"
curl -s "$endpoint/_callvault/kms-calls"; echo
