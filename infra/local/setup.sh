#!/usr/bin/env bash
# Installs the local AWS (moto), the official AWS Encryption SDK peers,
# Playwright (driving Debian's chromium, installed with apt when missing) and
# cargo-lambda into project-local virtual environments under infra/local/.venv/
# (the IaC checks' tools: infra/policy/install.sh).
# Idempotent: a venv whose requirements (file, or pinned spec) have not changed
# is left as it is.
#
# cargo-lambda (PyPI `cargo-lambda`, which brings `ziglang` for cross builds)
# lands in infra/local/.venv/cargo-lambda/bin/cargo-lambda. Cargo runs any
# `cargo-lambda` found on PATH as `cargo lambda`, so put that bin dir first on
# PATH to use it (the Rust test harness prepends it itself):
#   PATH="$PWD/infra/local/.venv/cargo-lambda/bin:$PATH" cargo lambda --version
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.venv"
python="${PYTHON:-python3}"
mkdir -p "$root"
install() { # name requirements-file
  local name=$1 req=$here/$2 venv=$root/$1
  local stamp="$venv/.requirements"
  if [ -x "$venv/bin/python" ] && cmp -s "$req" "$stamp"; then return 0; fi
  echo "setup: installing $name into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
}
install_pinned() { # name pip-spec executable
  local name=$1 spec=$2 exe=$3 venv=$root/$1
  local stamp="$venv/.requirements"
  if [ -x "$venv/bin/$exe" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$spec" ]; then return 0; fi
  echo "setup: installing $name ($spec) into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec"
  printf '%s\n' "$spec" >"$stamp"
}
# Debian's Chromium, for the player's browser test (tests/tests/player.rs).
# As root (CI, these machines) it is installed here; otherwise say how.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "setup: /usr/bin/chromium is missing: install Debian's chromium package (sudo apt-get install chromium)" >&2
    exit 1
  fi
fi
install moto requirements-moto.txt
install browser requirements-browser.txt
install esdk-cli requirements-esdk-cli.txt
install esdk4 requirements-esdk4.txt
install_pinned cargo-lambda cargo-lambda==1.9.2 cargo-lambda
echo "setup: cargo-lambda: prepend $root/cargo-lambda/bin to PATH for \`cargo lambda\`" >&2
