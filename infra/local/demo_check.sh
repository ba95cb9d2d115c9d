#!/bin/bash
# `make demo-check`: runs the demo with a terminal (script(1) gives it one),
# drops a WAV into the ingest bucket with the curl command the demo prints,
# and reports how long until the player's API lists it and whether it plays
# back byte-identical; then presses Enter, and checks that no output line is
# over 120 characters and that the logs remain in target/demo/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="$root/infra/local/.venv/moto/bin/python"
tmp="$(mktemp -d)"
trap 'exec 7>&- 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkfifo "$tmp/in"
(cd "$root" && script -qfc "bash infra/local/demo.sh" "$tmp/typescript" <"$tmp/in" >/dev/null 2>&1) &
demo=$!
exec 7>"$tmp/in"
for _ in $(seq 1 600); do
  grep -q "press Enter to stop" "$tmp/typescript" 2>/dev/null && break
  kill -0 "$demo" 2>/dev/null || { tail -20 "$tmp/typescript"; echo "the demo stopped early" >&2; exit 1; }
  sleep 1
done
out="$(tr -d '\r' <"$tmp/typescript")"
put="$(grep -A1 'curl -sS -T my-call.wav' <<<"$out" | tr -d '\\\n' | sed 's/  */ /g')"
player="$(sed -n 's/.*The player: *\(http[^ ]*\)/\1/p' <<<"$out" | head -1)"
issuer="$(sed -n 's/^issuer \(http[^ ]*\).*/\1/p' <<<"$out" | head -1)"
"$py" - "$tmp/my-call.wav" <<'PY'
import math, struct, sys, wave
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 500 * i / 8000))) for i in range(8000 * 15)))
PY
token="$(curl -sS -u callvault-tools:local-tools-secret-not-for-production -d grant_type=client_credentials \
  "$issuer/token" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
auth=(-H "X-Callvault-Authorization: Bearer $token")
cd "$tmp"
start=$(date +%s%N)
eval "$put"
listed=""
for _ in $(seq 1 100); do
  curl -sS "${auth[@]}" "${player}api/recordings?type=calls" | grep -q 'my-call.wav' && { listed=1; break; }
  sleep 0.1
done
took=$(( ($(date +%s%N) - start) / 1000000 ))
[ -n "$listed" ] || { echo "the dropped WAV was not listed within 10 s" >&2; exit 1; }
echo "dropped with the printed command: listed by the player after $took ms"
curl -sS "${auth[@]}" -o "$tmp/played.wav" "${player}recordings/calls/my-call.wav"
cmp "$tmp/played.wav" "$tmp/my-call.wav" && echo "it plays back byte-identical"
echo >&7
wait "$demo"
long=$(tr -d '\r' <"$tmp/typescript" | awk 'length($0) > 120' | wc -l)
echo "output lines over 120 characters: $long"
[ "$long" -eq 0 ]
for log in demo.log playback.log encrypt-recording.log notifications.log; do
  [ -s "$root/target/demo/$log" ] || { echo "target/demo/$log is missing after the demo stopped" >&2; exit 1; }
done
echo "logs kept after it stopped: target/demo/ ($(ls "$root/target/demo" | wc -l) files)"
