#!/usr/bin/env bash
# Installs the IaC checks' tools under infra/local/.venv/ (idempotent):
#  - iac/: the AWS SAM CLI with the cfn-lint it runs (requirements-iac.txt);
#  - cfn-guard/: cfn-guard 3.1.1, the static Linux x86_64 binary the npm
#    package @cdklabs/cdk-validator-cfnguard ships (seconds, where
#    `cargo install cfn-guard` takes three minutes of both cores). Elsewhere,
#    a cfn-guard 3.x on PATH is used.
# check.sh runs it; the end-to-end tests do not need these tools.
set -euo pipefail
local_dir="$(cd "$(dirname "$0")/../local" && pwd)"
root="$local_dir/.venv"
python="${PYTHON:-python3}"
mkdir -p "$root"

req="$local_dir/requirements-iac.txt" venv="$root/iac"
if ! { [ -x "$venv/bin/sam" ] && cmp -s "$req" "$venv/.requirements"; }; then
  echo "install: the SAM CLI and cfn-lint into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" \
    || { echo "install: pip could not install $req (is PyPI reachable?)" >&2; exit 1; }
  cp "$req" "$venv/.requirements"
fi

guard_pkg=@cdklabs/cdk-validator-cfnguard@0.0.62 guard="$root/cfn-guard"
if [ "$(cat "$guard/.requirements" 2>/dev/null)" = "$guard_pkg" ] && [ -x "$guard/cfn-guard" ]; then
  exit 0
fi
if [ "$(uname -sm)" != "Linux x86_64" ]; then
  if command -v cfn-guard >/dev/null && cfn-guard --version | grep -q 'cfn-guard 3\.'; then
    mkdir -p "$guard" && ln -sf "$(command -v cfn-guard)" "$guard/cfn-guard" && printf '%s\n' "$guard_pkg" >"$guard/.requirements"
    exit 0
  fi
  echo "install: the npm package of cfn-guard has a Linux x86_64 binary only; install cfn-guard 3 on PATH (cargo install cfn-guard --locked)" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "install: npm is needed to fetch cfn-guard ($guard_pkg); install Node.js with npm" >&2; exit 1; }
echo "install: cfn-guard ($guard_pkg) into $guard" >&2
rm -rf "$guard" && mkdir -p "$guard"
(cd "$guard" && npm pack --loglevel=error "$guard_pkg" >/dev/null) \
  || { echo "install: npm pack $guard_pkg failed (is the npm registry reachable?)" >&2; exit 1; }
(cd "$guard" && tar xzf ./*.tgz package/bin/ubuntu/x86_64/cfn-guard && mv package/bin/ubuntu/x86_64/cfn-guard . && rm -rf package ./*.tgz)
"$guard/cfn-guard" --version >&2
printf '%s\n' "$guard_pkg" >"$guard/.requirements"
