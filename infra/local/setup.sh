#!/usr/bin/env bash
# Installs the local AWS (moto) and the official AWS Encryption SDK peers into
# project-local virtual environments under infra/local/.venv/. Idempotent: a venv
# whose requirements file has not changed is left as it is.
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
install moto requirements-moto.txt
install esdk-cli requirements-esdk-cli.txt
install esdk4 requirements-esdk4.txt
