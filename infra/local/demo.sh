#!/usr/bin/env bash
# The whole flow on the local AWS: start it, create the customer's KMS key and
# the deployment from template.yaml itself (infra/local/provision.py: its
# buckets, catalog table, queues and topic, and each function's environment),
# drop a real WAV recording into the ingest bucket, run the encrypt-recording
# Lambda on it through `cargo lambda watch` / `cargo lambda invoke` with the
# sample event, and show the vault object, the catalog rows and that the
# plaintext is gone; then decrypt it with the official aws-encryption-cli and
# with callvault, and seek into it; then play it back over HTTP through the
# playback Lambda's local Function URL, seeking with one KMS call; then
# disable the key and show the key guardian's alert; then audit key rotation;
# then move the recording onto a new key; then list the keys, hold and erase
# the recording through the retention function; then a new call comes in
# and the supervisors' player is served, with sign-in through a local
# OpenID Connect issuer, until Enter is pressed (at once without a terminal).
# After the story a few recordings remain to play, the ingest bucket's
# notifications reach encrypt-recording (infra/local/notifications.py), so a
# file dropped into it becomes a recording, and the demo prints the settings
# that point the callvault CLI at it. Its logs stay in target/demo/ after it
# stops. Output lines are whole and at most 120 characters.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/infra/local/.venv"
bin="$root/target/debug/callvault"
# Everything the demo writes (its files, each process's log) stays here after it stops.
work="$root/target/demo"
rm -rf "$work" && mkdir -p "$work"
trap 'kill "${local_aws_pid:-}" ${function_pids:-} 2>/dev/null || true; for w in ${watch_pids:-}; do kill -- -"$w" 2>/dev/null; done' EXIT
py="$venv/moto/bin/python"
export PATH="$venv/cargo-lambda/bin:$PATH"
# Every line whole and at most 120 characters: a longer one (a JSON log line,
# an ARN list) is wrapped at a space, never cut. Also kept in $work/demo.log.
exec > >(stdbuf -oL fold -s -w 120 | tee "$work/demo.log") 2>&1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Events carry the time they are sent, as EventBridge and S3 stamp theirs.
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

step "starting the local AWS (moto + KMS fixes) on 127.0.0.1"
source "$root/infra/local/local-aws.sh"
start_local_aws "$work"
endpoint=$AWS_ENDPOINT_URL
echo "local AWS at $endpoint"

step "the customer's key (what infra/key.yaml creates: symmetric, rotating, alias/callvault-recordings)"
key="$("$py" - <<'PY'
import boto3
kms = boto3.client("kms")
arn = kms.create_key(Description="callvault recordings of acme")["KeyMetadata"]["Arn"]
kms.enable_key_rotation(KeyId=arn)
kms.create_alias(AliasName="alias/callvault-recordings", TargetKeyId=arn)
print(arn)
PY
)"
echo "key $key"

step "the company's identity provider: a local OpenID Connect issuer (infra/local/oidc_issuer.py, users from oidc-users.json)"
# The Lambda runtime API's port and the player's front, chosen now: the
# player's URL is the sign-in's redirect, registered at the issuer.
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
front_port="$(free_port)"
# The player's front (what CloudFront is on AWS, started once the stack
# exists): the player at the root of http://localhost, a secure context, so
# its __Host- cookies are kept as they are over https.
player_url="http://localhost:$front_port"
"$py" "$root/infra/local/oidc_issuer.py" --users "$root/infra/local/oidc-users.json" \
  --redirect-uri "$player_url/auth/callback" >"$work/issuer.out" 2>"$work/issuer.log" &
function_pids="${function_pids:-} $!"
issuer=""
for _ in $(seq 1 120); do
  issuer="$(sed -n 's/^READY //p' "$work/issuer.out" 2>/dev/null)"
  [ -n "$issuer" ] && break
  sleep 0.25
done
[ -n "$issuer" ] || { cat "$work/issuer.log" >&2; echo "the local OpenID Connect issuer did not start" >&2; exit 1; }
echo "issuer $issuer (discovery: $issuer/.well-known/openid-configuration)"
secret_arn="$("$py" -c '
import boto3
print(boto3.client("secretsmanager").create_secret(Name="callvault-player-client",
      SecretString="{\"client_secret\": \"local-player-secret-not-for-production\"}")["ARN"])')"
echo "the player's client secret, in Secrets Manager: $secret_arn"

step "the deployment, from template.yaml itself (infra/local/provision.py, stack callvault-local)"
"$py" "$root/infra/local/provision.py" --stack callvault-local --out "$work/env" \
  --param Org=acme --param "RecordingKeyArn=$key" --param RecordingTypes=calls,voicemail \
  --param "OidcIssuer=$issuer" --param OidcClientId=callvault-player --param OidcAudiences=callvault-tools \
  --param "OidcClientSecretArn=$secret_arn" --param "PlayerUrl=$player_url" \
  --param 'PlaybackAccess={"qa": ["calls"], "supervisors": ["calls", "voicemail"]}' >"$work/stack.json"
# The player's front: forwards to the local Function URL with the stack's
# front secret (as the distribution's origin header does) and the viewer's
# address.
front_secret="$("$py" - "$work/stack.json" <<'PY'
import boto3, json, sys
arn = json.load(open(sys.argv[1]))["resources"]["PlayerFrontSecret"]
print(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
PY
)"
await_banner() { # name banner what: a local stand-in's first line in $work/<name>.out says it listens
  for _ in $(seq 1 120); do
    grep -q "^$2" "$work/$1.out" 2>/dev/null && return 0
    sleep 0.25
  done
  echo "$3 did not start: see $work/$1.log" >&2
  exit 1
}
CALLVAULT_FRONT_SECRET="$front_secret" "$py" "$root/infra/local/player_front.py" --port "$front_port" \
  --origin "http://127.0.0.1:$port/lambda-url/playback" --template "$root/template.yaml" \
  >"$work/front.out" 2>"$work/front.log" &
function_pids="${function_pids:-} $!"
await_banner front 'player front: ' "the player's front"
read -r ingest vault table dlq topic evidence < <("$py" - "$work/stack.json" "$work/resources.txt" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
r = s["resources"]
print(r["IngestBucket"], r["VaultBucket"], r["Catalog"], r["DeadLetterQueue"], r["AlertTopic"], r["EvidenceBucket"])
with open(sys.argv[2], "w") as out:
    for logical, physical in r.items():
        print(f"  {logical:20} {physical}", file=out)
    print("  not on the local AWS: " + ", ".join(s["not_provisioned"]), file=out)
PY
)
cat "$work/resources.txt"
echo "-- encrypt-recording's environment, as template.yaml sets it:"
sed 's/^/  /' "$work/env/encrypt-recording.env"

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

step "the recorder drops it into the ingest bucket as calls/2026-11-23-0001.wav"
read -r etag version size < <("$py" - "$ingest" "$work/call.wav" <<'PY'
import sys, boto3
bucket, path = sys.argv[1:]
body = open(path, "rb").read()
r = boto3.client("s3").put_object(Bucket=bucket, Key="calls/2026-11-23-0001.wav", Body=body, ContentType="audio/wav")
print(r["ETag"].strip('"'), r["VersionId"], len(body))
PY
)
echo "ETag $etag, version $version, $size bytes"

step "the Lambda runtime API (cargo lambda watch) and encrypt-recording on it, invoked with events/s3-object-created.json"
# One watch serves every function's runtime and invoke APIs; each function is
# the binary `make build` built, started with the variables Lambda sets.
start_watch() { # port: a watch serving the runtime and invoke APIs there
  (cd "$root" && exec setsid cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$1" \
    >>"$work/watch.log" 2>&1) &
  watch_pids="${watch_pids:-} $!"
  for _ in $(seq 1 240); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && break
    sleep 0.25
  done
}
start_watch "$port"
start_function() { # name [binary [port]]: its environment from template.yaml, pointed at the local AWS
  # cargo lambda invokes a function by its binary's name: a second
  # function of one binary (a retention duty) runs on a watch of its own.
  local bin="${2:-$1}" on="${3:-$port}"
  (set -a; . "$work/env/$1.env"; . "$work/local.env"; AWS_LAMBDA_FUNCTION_NAME=$bin AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024
   AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$on/.rt/$bin"; exec "$root/target/debug/$bin") >"$work/$1.log" 2>&1 &
  function_pids="${function_pids:-} $!"
}
cat >"$work/local.env" <<ENV
AWS_ENDPOINT_URL='$endpoint'
AWS_REGION='us-east-1'
AWS_ACCESS_KEY_ID='testing'
AWS_SECRET_ACCESS_KEY='testing'
ENV
start_function encrypt-recording
"$py" - "$root/events/s3-object-created.json" "$work/event.json" "$ingest" "$etag" "$version" "$size" "$(now)" <<'PY'
import json, sys
src, dst, bucket, etag, version, size, now = sys.argv[1:]
e = json.load(open(src))
e["Records"][0]["eventTime"] = now
s3 = e["Records"][0]["s3"]
s3["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
s3["object"].update(eTag=etag, versionId=version, size=int(size))
json.dump(e, open(dst, "w"))
PY
(cd "$root" && cargo lambda invoke encrypt-recording --invoke-address 127.0.0.1 --invoke-port "$port" \
  --data-file "$work/event.json" --output-format json) | "$py" -m json.tool
echo "-- the function's log: the recording's line and its metrics (EMF), field by field:"
grep -E 'encrypted; plaintext deleted|RecordingsEncrypted' "$work/encrypt-recording.log" | "$py" -c '
import json, sys
for line in sys.stdin:
    if not line.startswith("{"):  # the log line: what happened, after the invocation span
        print("  " + line.split("}: ", 1)[-1].strip())
        continue
    record = json.loads(line)
    record.pop("_aws", None)  # the metrics directive: CloudWatch reads it, people need not
    print("  metrics: " + ", ".join(f"{k}={v}" for k, v in record.items()))
'


step "the vault object, the catalog rows, and no plaintext left"
"$py" - "$ingest" "$vault" "$table" "$key" "$work/call.wav.esdk" <<'PY'
import json, sys, boto3
ingest, vault, table, key, out = sys.argv[1:]
s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
obj = s3.get_object(Bucket=vault, Key="calls/2026-11-23-0001.wav")
open(out, "wb").write(obj["Body"].read())
print(f"vault: s3://{vault}/calls/2026-11-23-0001.wav, {obj['ContentLength']} bytes, version {obj['VersionId']}")
def plain(item):
    def value(v):
        (kind, x), = v.items()
        return [value(i) for i in x] if kind == "L" else x
    return {k: value(v) for k, v in sorted(item.items())}
rec = ddb.get_item(TableName=table, Key={"pk": {"S": "recording#calls/2026-11-23-0001.wav"}, "sk": {"S": "recording"}})["Item"]
print("catalog recording:", json.dumps(plain(rec), indent=2, default=str))
# A key's usage is spread over counters ("<key ARN>#<shard>"), summed when read.
shards = ddb.query(TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :arn)",
                   ExpressionAttributeValues={":pk": {"S": "key"}, ":arn": {"S": key}})["Items"]
print(f"catalog key usage ({len(shards)} counter):", json.dumps([plain(i) for i in shards], indent=2, default=str))
assert sum(int(i["recordings"]["N"]) for i in shards) == 1
left = s3.list_object_versions(Bucket=ingest, Prefix="calls/2026-11-23-0001.wav")
n = len(left.get("Versions", [])) + len(left.get("DeleteMarkers", []))
print(f"ingest: {n} versions of the plaintext left")
assert n == 0
PY

step "callvault inspect (the vault object is a standard AWS Encryption SDK v2 message, suite 0x0478)"
"$bin" inspect "$work/call.wav.esdk"

step "decrypt with the official aws-encryption-cli (no callvault involved)"
"$venv/esdk-cli/bin/aws-encryption-cli" --decrypt-unsigned -i "$work/call.wav.esdk" -o "$work/by-official-cli.wav" \
  -w "key=$key" -c org=acme recording_type=calls recording_id=2026-11-23-0001.wav content_type=audio/wav -S
cmp "$work/call.wav" "$work/by-official-cli.wav" && echo "official CLI: byte-identical"

step "decrypt with callvault (calling only the customer's key, requiring the org and recording id)"
"$bin" decrypt --key "$key" --context org=acme --context recording_id=2026-11-23-0001.wav "$work/call.wav.esdk" "$work/by-callvault.wav"
cmp "$work/call.wav" "$work/by-callvault.wav" && echo "callvault: byte-identical"

step "seek: seconds 20-21 only (bytes 320044-336043), read from the frames that cover them"
"$bin" decrypt --key "$key" --context org=acme --range 320044-336043 "$work/call.wav.esdk" "$work/seek.raw"
cmp <(tail -c +320045 "$work/call.wav" | head -c 16000) "$work/seek.raw" && echo "seek: the 16000 bytes of second 20 match"

step "a wrong recording id is refused, and leaves no output"
if "$bin" decrypt --key "$key" --context org=acme --context recording_id=someone-else "$work/call.wav.esdk" "$work/wrong.wav"; then
  echo "unexpected success" >&2; exit 1
fi
[ ! -e "$work/wrong.wav" ] && echo "no output written"

step "playback on the same runtime API, through the player's front (what supervisors' players call)"
start_function playback
url="$player_url/recordings/calls/2026-11-23-0001.wav"
echo "without a token from the identity provider, nobody (whatever the IAM request context says):"
curl -sS --max-time 120 -w ' (HTTP %{http_code})\n' "$url/info"
echo "a tool's token: the client-credentials grant of callvault-tools (group supervisors)"
token="$(curl -sS -u callvault-tools:local-tools-secret-not-for-production -d grant_type=client_credentials "$issuer/token" \
  | "$py" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
# In its own header: on AWS, Authorization carries the SigV4 signature of a
# direct call (or CloudFront's, behind the front).
auth=(-H "X-Callvault-Authorization: Bearer $token")
echo "GET $url/info"
curl -sS --max-time 120 "${auth[@]}" "$url/info" | "$py" -m json.tool
decrypts() { curl -s "$endpoint/_callvault/kms-calls/by-key" | "$py" -c "import json,sys; print(json.load(sys.stdin).get('$key', {}).get('Decrypt', 0))"; }
before=$(decrypts)
echo "GET $url  Range: bytes=320044-336043 (second 20)"
curl -sS --max-time 120 "${auth[@]}" -D "$work/seek.headers" -o "$work/seek-http.raw" -H "Range: bytes=320044-336043" "$url"
grep -iE "^(HTTP|content-(type|range|length)|etag|accept-ranges)" "$work/seek.headers"
cmp <(tail -c +320045 "$work/call.wav" | head -c 16000) "$work/seek-http.raw" && echo "second 20 over HTTP: the 16000 bytes match"
echo "seeking 19 more times, one second each, across the recording"
for s in 1 3 5 7 9 11 13 15 17 19 21 23 25 27 28 29 2 4 6; do
  start=$((44 + s * 16000))
  curl -sS --max-time 60 "${auth[@]}" -o "$work/s.raw" -H "Range: bytes=$start-$((start + 15999))" "$url"
  cmp -s <(tail -c +$((start + 1)) "$work/call.wav" | head -c 16000) "$work/s.raw" || { echo "second $s differs" >&2; exit 1; }
done
echo "20 seeks, all byte-identical; KMS Decrypt calls for them: $(( $(decrypts) - before ))"
echo "-- the audit line of the first seek (who from the verified token, what, which bytes, which key, KMS or cache):"
grep -m1 '"audit":"playback","phase":"end".*"range_requested":"bytes=320044' "$work/playback.log" | "$py" -m json.tool
curl -sS "${auth[@]}" -o /dev/null -w "a range past the end answers %{http_code}\n" -H "Range: bytes=9999999-" "$url"

step "a recording type nobody configured (faxes): kept, tagged, dead-lettered"
"$py" - "$ingest" "$dlq" "$root/events/s3-unknown-type.json" "$(now)" >"$work/fax.json" <<'PY'
import json, sys, boto3
bucket, dlq, src, now = sys.argv[1:]
r = boto3.client("s3").put_object(Bucket=bucket, Key="faxes/f-1.tif", Body=b"fax!", ContentType="image/tiff")
e = json.load(open(src))
e["Records"][0]["eventTime"] = now
s3 = e["Records"][0]["s3"]
s3["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
s3["object"].update(key="faxes/f-1.tif", eTag=r["ETag"].strip('"'), versionId=r["VersionId"], size=4)
print(json.dumps(e))
PY
(cd "$root" && cargo lambda invoke encrypt-recording --invoke-address 127.0.0.1 --invoke-port "$port" \
  --data-file "$work/fax.json" --output-format json) | "$py" -m json.tool
"$py" - "$ingest" "$dlq" <<'PY'
import json, sys, boto3
bucket, dlq = sys.argv[1:]
tags = boto3.client("s3").get_object_tagging(Bucket=bucket, Key="faxes/f-1.tif")["TagSet"]
print("ingest object tags:", tags)
msgs = boto3.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
print("dead letters:", [json.loads(m["Body"])["code"] for m in msgs])
PY

step "key-guardian: the security team's alert topic (an SQS queue subscribed to it stands in for email)"
"$py" - "$topic" <<'PY'
import sys, boto3
sns, sqs = boto3.client("sns"), boto3.client("sqs")
q = sqs.create_queue(QueueName="callvault-local-alerts-inbox")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=sys.argv[1], Protocol="sqs", Endpoint=arn)
PY
start_function key-guardian
echo "someone disables the demo key (the local AWS has no CloudTrail, so the event EventBridge would"
echo "deliver is events/kms-disable-key.json naming this key)"
"$py" - "$key" "$root/events/kms-disable-key.json" "$work/kms-disable-key.json" "$(now)" <<'PY'
import json, sys, boto3
key, src, dst, now = sys.argv[1:]
boto3.client("kms").disable_key(KeyId=key)
text = open(src).read().replace("arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", key)
e = json.loads(text)
e["time"] = e["detail"]["eventTime"] = now
json.dump(e, open(dst, "w"))
PY
(cd "$root" && cargo lambda invoke key-guardian --invoke-address 127.0.0.1 --invoke-port "$port" \
  --data-file "$work/kms-disable-key.json" --output-format json) | "$py" -m json.tool
echo "-- the alert that arrives:"
"$py" - <<'PY'
import json, boto3
sqs = boto3.client("sqs")
q = sqs.get_queue_url(QueueName="callvault-local-alerts-inbox")["QueueUrl"]
msgs = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, WaitTimeSeconds=5).get("Messages", [])
assert msgs, "no alert arrived"
for m in msgs:
    n = json.loads(m["Body"])
    print("Subject:", n["Subject"])
    print("Attributes:", {k: v["Value"] for k, v in n.get("MessageAttributes", {}).items()})
    print(n["Message"])
PY
"$py" -c "import boto3, sys; boto3.client('kms').enable_key(KeyId=sys.argv[1])" "$key" && echo "(key re-enabled, as the alert says)"

step "rotation audit: callvault audit prints the verdicts (exit status 1 if any key is not compliant)"
echo "callvault audit --stack callvault-local (the settings are read from the stack's rotation-audit function)"
"$bin" audit --stack callvault-local
echo "-- the same audit as the daily rotation-audit Lambda, on events/rotation-schedule.json: its evidence report"
start_function rotation-audit
"$py" -c 'import json, sys; e = json.load(open(sys.argv[1])); e["time"] = sys.argv[3]; json.dump(e, open(sys.argv[2], "w"))' \
  "$root/events/rotation-schedule.json" "$work/rotation-schedule.json" "$(now)"
(cd "$root" && cargo lambda invoke rotation-audit --invoke-address 127.0.0.1 --invoke-port "$port" \
  --data-file "$work/rotation-schedule.json" --output-format json) | "$py" -m json.tool

step "key moves: the recording re-keyed onto a new key by the rekey function (events/s3-batch-rekey.json, schema 2.0)"
key2="$("$py" - <<'PY'
import boto3
kms = boto3.client("kms")
arn = kms.create_key(Description="callvault recordings of acme, 2027")["KeyMetadata"]["Arn"]
kms.enable_key_rotation(KeyId=arn)
print(arn)
PY
)"
echo "new key $key2"
CATALOG_TABLE="$table" VAULT_BUCKET="$vault" "$bin" rekey --from-key "$key" --to-key "$key2" --dry-run
start_function rekey
"$py" - "$root/events/s3-batch-rekey.json" "$work/rekey-event.json" "$vault" "$key" "$key2" <<'PY'
import json, sys
src, dst, vault, old, new = sys.argv[1:]
e = json.load(open(src))
e["job"]["userArguments"].update(targetKeys=new, fromKey=old)
e["tasks"][0]["s3Bucket"] = vault
json.dump(e, open(dst, "w"))
PY
(cd "$root" && cargo lambda invoke rekey --invoke-address 127.0.0.1 --invoke-port "$port" \
  --data-file "$work/rekey-event.json" --output-format json) | "$py" -m json.tool
"$py" - "$vault" "$table" "$key" "$key2" "$work/rekeyed.esdk" <<'PY'
import sys, boto3
vault, table, old, new, out = sys.argv[1:]
s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
open(out, "wb").write(s3.get_object(Bucket=vault, Key="calls/2026-11-23-0001.wav")["Body"].read())
for v in s3.list_object_versions(Bucket=vault, Prefix="calls/2026-11-23-0001.wav")["Versions"]:
    tags = s3.get_object_tagging(Bucket=vault, Key=v["Key"], VersionId=v["VersionId"])["TagSet"]
    print(f"vault version {v['VersionId']}: {', '.join(t['Value'] for t in tags if t['Key'] == 'callvault-state')}")
def usage(arn):
    items = ddb.query(TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :arn)",
                      ExpressionAttributeValues={":pk": {"S": "key"}, ":arn": {"S": arn}})["Items"]
    return sum(int(i["recordings"]["N"]) for i in items)
print(f"recordings under the old key: {usage(old)}, under the new key: {usage(new)}")
assert (usage(old), usage(new)) == (0, 1)
PY
"$venv/esdk-cli/bin/aws-encryption-cli" --decrypt-unsigned -i "$work/rekeyed.esdk" -o "$work/rekeyed.wav" \
  -w "key=$key2" -c org=acme recording_type=calls recording_id=2026-11-23-0001.wav -S
cmp "$work/call.wav" "$work/rekeyed.wav" && echo "official CLI under the new key alone: byte-identical"
"$py" -c "import boto3, sys; boto3.client('kms').disable_key(KeyId=sys.argv[1])" "$key" && echo "old key disabled"
curl -sf "$url" -o "$work/played.wav" && cmp "$work/call.wav" "$work/played.wav" && echo "and the recording still plays"

step "keys: what each key protects and where the deployment uses it (read from the functions' settings)"
export CALLVAULT_STACK=callvault-local CATALOG_TABLE="$table"
"$bin" keys
echo "-- retiring the old key while the deployment is still configured with it is refused:"
"$bin" keys retire "$key" || true

step "legal hold and erasure: each a duty of its own, behind its own IAM-authenticated Function URL"
# The run answers the schedule only; holding, erasing and erasing past a
# governance-mode retention are three functions of the retention binary,
# each with its own role and URL (template.yaml). Locally,
# infra/local/function_url.py checks each request's SigV4 signature as
# Lambda does and names the caller its access key belongs to; the evidence
# names that caller, never what the request says.
start_function retention
routes=()
for duty in retention-hold retention-erase retention-erase-past-gov; do
  duty_port="$(free_port)"
  start_watch "$duty_port"
  start_function "$duty" retention "$duty_port"
  routes+=(--route "$duty=http://127.0.0.1:$duty_port/retention")
done
urls_port="$(free_port)"
operator_arn="arn:aws:sts::123456789012:assumed-role/records-officer/you"
python3 "$root/infra/local/function_url.py" --port "$urls_port" "${routes[@]}" \
  --region us-east-1 --caller "testing:testing=$operator_arn" >"$work/urls.out" 2>"$work/urls.log" &
function_pids="${function_pids:-} $!"
await_banner urls 'function urls: ' "the local function URLs"
export RETENTION_HOLD_URL="http://127.0.0.1:$urls_port/retention-hold/"
export RETENTION_ERASE_URL="http://127.0.0.1:$urls_port/retention-erase/"
export RETENTION_ERASE_PAST_GOVERNANCE_URL="http://127.0.0.1:$urls_port/retention-erase-past-gov/"
"$bin" hold set calls/2026-11-23-0001.wav --reason "complaint C-17 under review"
echo "-- erasure is refused while the hold is on:"
"$bin" erase calls/2026-11-23-0001.wav --reason "data subject request DSR-0042" || true
echo "-- and the hold duty's URL does not erase:"
"$bin" erase calls/2026-11-23-0001.wav --reason "DSR-0042" --url "$RETENTION_HOLD_URL" || true
"$bin" hold release calls/2026-11-23-0001.wav --reason "complaint C-17 closed"
"$bin" erase calls/2026-11-23-0001.wav --reason "data subject request DSR-0042"
"$py" - "$evidence" "$vault" <<'PY'
import json, sys, boto3
evidence, vault = sys.argv[1:]
s3 = boto3.client("s3")
for o in s3.list_objects_v2(Bucket=evidence, Prefix="erasure/").get("Contents", []):
    report = json.loads(s3.get_object(Bucket=evidence, Key=o["Key"])["Body"].read())
    d = report["deletions"][0]
    print(f"evidence {o['Key']}: {d['recording_type']}/{d['recording_id']}, {len(d['versions'])} versions, "
          f"{d['plaintext_bytes']} bytes, asked by {report['details']['requested_by']}: {report['details']['reason']}")
left = s3.list_object_versions(Bucket=vault, Prefix="calls/2026-11-23-0001.wav").get("Versions", [])
print(f"versions left in the vault: {len(left)}")
assert not left
PY
"$bin" keys

step "the key owner's KMS call log (calls by operation)"
curl -s "$endpoint/_callvault/kms-calls" | "$py" -c 'import json, sys; [print(f"  {op:32} {n}") for op, n in sorted(json.load(sys.stdin).items())]' 


step "the ingest bucket's notifications, delivered to encrypt-recording as S3 does (infra/local/notifications.py)"
"$py" -c "import boto3, sys; boto3.client('kms').enable_key(KeyId=sys.argv[1])" "$key" && echo "(the configured key enabled again for new calls)"
"$py" "$root/infra/local/notifications.py" --bucket "$ingest" \
  --invoke-url "http://127.0.0.1:$port/2015-03-31/functions/encrypt-recording/invocations" >"$work/notifications.log" 2>&1 &
function_pids="${function_pids:-} $!"
for _ in $(seq 1 120); do grep -q '^READY' "$work/notifications.log" 2>/dev/null && break; sleep 0.25; done
grep -q '^READY' "$work/notifications.log" || { cat "$work/notifications.log" >&2; echo "the relay did not start" >&2; exit 1; }
echo "ObjectCreated events of $ingest go to a queue; each is relayed to encrypt-recording's Invoke API"

step "recordings to explore: three calls and two voicemails come in, nothing but an upload each"
"$py" - "$ingest" <<'PY'
import io, math, struct, sys, wave
import boto3
bucket = sys.argv[1]
def tone(seconds, pitches, rate=8000):
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
        frames = bytearray()
        for i in range(rate * seconds):
            t = i / rate
            f = pitches[int(t / 2) % len(pitches)]   # speakers taking turns every 2 s
            frames += struct.pack("<h", int(8000 * math.sin(2 * math.pi * f * t)))
        w.writeframes(bytes(frames))
    return out.getvalue()
s3 = boto3.client("s3")
for key, seconds, pitches in [
    ("calls/2026-12-07-0002.wav", 45, [440, 660]),
    ("calls/2026-12-07-0003.wav", 120, [392, 523, 659]),
    ("calls/2026-12-07-0004.wav", 12, [300, 500]),
    ("voicemail/2026-12-07-vm-0001.wav", 20, [587]),
    ("voicemail/2026-12-07-vm-0002.wav", 8, [494]),
]:
    s3.put_object(Bucket=bucket, Key=key, Body=tone(seconds, pitches), ContentType="audio/wav")
    print(f"  uploaded s3://{bucket}/{key} ({seconds} s)")
PY
for _ in $(seq 1 240); do [ "$(grep -c '^new object' "$work/notifications.log")" -ge 5 ] && break; sleep 0.25; done
grep '^new object' "$work/notifications.log" | sed 's/^/  /'
[ "$(grep -c '^new object.*encrypted' "$work/notifications.log")" -ge 5 ] \
  || { echo "not every upload was encrypted: see $work/notifications.log and $work/encrypt-recording.log" >&2; exit 1; }

step "the supervisors' player"
curl -sS -o /dev/null -w "the player page: HTTP %{http_code}\n" "$player_url/"
curl -sS -o /dev/null -w "sign-in: HTTP %{http_code}, to the identity provider's login form\n" "$player_url/auth/login"
# The users, from the issuer's own list.
"$py" - "$root/infra/local/oidc-users.json" "$player_url" <<'PY'
import json, sys
users, url = json.load(open(sys.argv[1]))["users"], sys.argv[2]
print(f"\n  The player:  {url}/")
for u in users:
    print(f"  Sign in as:  {u['username']:15} / {u['password']:11} {u['name']}, groups: {', '.join(u['groups'])}")
print("  Access (PlaybackAccess): group qa plays calls; group supervisors plays calls and voicemail;")
print("  anyone else sees the refusal (not_permitted).")
PY
cat <<TXT

  Add a call: drop a WAV into the ingest bucket as <type>/<id> (type calls or voicemail); it plays
  within seconds:
    curl -sS -T my-call.wav -H 'Content-Type: audio/wav' \\
      $endpoint/$ingest/calls/my-call.wav

  Point the callvault CLI at this deployment (paste into another terminal):
    export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
    export RETENTION_HOLD_URL=$RETENTION_HOLD_URL
    export RETENTION_ERASE_URL=$RETENTION_ERASE_URL
    export RETENTION_ERASE_PAST_GOVERNANCE_URL=$RETENTION_ERASE_PAST_GOVERNANCE_URL
    export CALLVAULT_STACK=callvault-local CATALOG_TABLE=$table
    export VAULT_BUCKET=$vault
    export PATH="$root/target/debug:\$PATH"
  then, e.g.: callvault keys; callvault audit; callvault hold set calls/my-call.wav --reason test

  Logs (kept after the demo stops): $work/
    playback.log (one audit line per request), encrypt-recording.log, notifications.log, demo.log
TXT
if [ -t 0 ]; then
  echo "The local AWS, the issuer and the player keep running: press Enter to stop."
  read -r _
else
  echo "(no terminal: stopping now)"
fi

step "done"
