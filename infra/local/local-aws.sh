# Sourced by the demo and the benchmark scripts: start_local_aws WORKDIR starts
# the local AWS (infra/local/moto_launcher.py) on a free 127.0.0.1 port, waits
# for its READY line (30 s), exports the standard AWS variables that point the
# SDKs and CLIs at it, and sets local_aws_pid (the caller's trap stops it).
start_local_aws() {
  local work=$1 here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  "$here/.venv/moto/bin/python" "$here/moto_launcher.py" --port 0 >"$work/moto.out" 2>"$work/moto.err" &
  local_aws_pid=$!
  local endpoint=""
  for _ in $(seq 1 120); do
    endpoint="$(sed -n 's/^READY //p' "$work/moto.out" 2>/dev/null)"
    [ -n "$endpoint" ] && break
    kill -0 "$local_aws_pid" 2>/dev/null || break
    sleep 0.25
  done
  if [ -z "$endpoint" ]; then
    cat "$work/moto.err" >&2
    echo "the local AWS did not start" >&2
    return 1
  fi
  export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
}
