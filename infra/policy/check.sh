#!/usr/bin/env bash
# `make iac`: the infrastructure checks of the test command.
#  1. cfn-lint on template.yaml and infra/key.yaml, clean (warnings included);
#  2. sam validate --lint on template.yaml (the SAM one; offline), and cfn-lint on the SAM
#     transform's output (what CloudFormation deploys);
#  3. the cfn-guard rules (infra/policy/callvault.guard) pass on both;
#  4. each negative fixture (infra/policy/fixtures/<rule>.<case>.yaml) fails,
#     and fails exactly the rule its name starts with.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/infra/local/.venv"
guard="$venv/cfn-guard/cfn-guard"
rules="$root/infra/policy/callvault.guard"
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0
bash "$root/infra/policy/install.sh"
templates=("$root/template.yaml" "$root/infra/key.yaml")
out="$(mktemp)"; trap 'rm -f "$out" "$out.json"' EXIT

for t in "${templates[@]}"; do
  "$venv/iac/bin/cfn-lint" --regions us-east-1 eu-west-1 -- "$t"
  echo "cfn-lint: ${t#"$root"/} clean"
done

(cd "$root" && "$venv/iac/bin/sam" validate --lint --template-file template.yaml)

# What CloudFormation deploys is the SAM transform's output: lint that too
# (dependency cycles through generated resources, intrinsic functions where
# CloudFormation allows only literals).
"$venv/iac/bin/python" "$root/infra/policy/sam_transform.py" "$root/template.yaml" >"$out.json"
"$venv/iac/bin/cfn-lint" --regions us-east-1 eu-west-1 -- "$out.json" || { echo "cfn-lint: template.yaml after the SAM transform is not clean" >&2; exit 1; }
rm -f "$out.json"
echo "cfn-lint: template.yaml after the SAM transform clean"

for t in "${templates[@]}"; do
  if ! "$guard" validate --rules "$rules" --data "$t" --show-summary fail >"$out" 2>&1; then
    cat "$out" >&2
    echo "cfn-guard: ${t#"$root"/} breaks the rules above" >&2
    exit 1
  fi
  echo "cfn-guard: ${t#"$root"/} passes every rule"
done

rules_seen=()
for f in "$root"/infra/policy/fixtures/*.yaml; do
  name="$(basename "$f" .yaml)" want="${name%%.*}"
  grep -q "^rule $want\b" "$rules" || { echo "fixture $name names no rule ($want)" >&2; exit 1; }
  set +e; "$guard" validate --rules "$rules" --data "$f" --show-summary fail >"$out" 2>&1; rc=$?; set -e
  failed="$(grep -o 'callvault.guard/[A-Za-z0-9_]*' "$out" | sed 's/.*\///' | sort -u | tr '\n' ' ')"
  if [ "$rc" -ne 19 ] || [ "$failed" != "$want " ]; then
    cat "$out" >&2
    echo "fixture $name: expected cfn-guard to fail exactly [$want], got exit $rc failing [${failed% }]" >&2
    exit 1
  fi
  echo "cfn-guard: fixture $name rejected by $want"
  rules_seen+=("$want")
done
# Every rule has at least one fixture that it, and only it, rejects.
for r in $(sed -n 's/^rule \([A-Za-z0-9_]*\).*/\1/p' "$rules"); do
  printf '%s\n' ${rules_seen[@]+"${rules_seen[@]}"} | grep -qx "$r" || { echo "rule $r has no negative fixture" >&2; exit 1; }
done
echo "iac: all checks passed"
