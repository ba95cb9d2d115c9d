#!/usr/bin/env bash
# Format throughput: `cargo bench -p envelope` (streaming encrypt/decrypt at
# 4 KiB, 64 KiB, 1 MiB frames beside bare aws-lc-rs AES-256-GCM, same run),
# then the same 64 MiB payload at 64 KiB frames through the official Python
# AWS Encryption SDK (raw AES keyring, no KMS), as a ratio.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/infra/local/setup.sh"
out="$(CALLVAULT_BENCH_MIB="${CALLVAULT_BENCH_MIB:-128}" cargo bench -q -p envelope --manifest-path "$root/Cargo.toml" 2>/dev/null | tee /dev/stderr)"
ours=$(echo "$out" | sed -n 's/^RESULT frame=65536 encrypt_gbps=\([0-9.]*\) encrypt_vec_gbps=[0-9.]* decrypt_gbps=\([0-9.]*\).*/\1 \2/p')
"$root/infra/local/.venv/esdk4/bin/python" - $ours <<'PY'
import os, sys, time
import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

class Provider(RawMasterKeyProvider):
    provider_id = "bench"
    def _get_raw_key(self, key_id):
        return WrappingKey(wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                           wrapping_key=b"k" * 32, wrapping_key_type=EncryptionKeyType.SYMMETRIC)
p = Provider(); p.add_master_key(b"k1")
client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
data = os.urandom(64 << 20)
def best(f, n=3):
    r = []
    for _ in range(n):
        t = time.perf_counter(); x = f(); r.append(time.perf_counter() - t)
    return min(r), x
te, (ct, _) = best(lambda: client.encrypt(source=data, key_provider=p, frame_length=65536,
                                           algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
td, (pt, _) = best(lambda: client.decrypt(source=ct, key_provider=p))
assert pt == data
pe, pd = len(data) / te / 1e9, len(data) / td / 1e9
print(f"python aws-encryption-sdk 4.x, 64 MiB at 64 KiB frames: encrypt {pe:.3f} GB/s, decrypt {pd:.3f} GB/s")
if len(sys.argv) == 3:
    oe, od = float(sys.argv[1]), float(sys.argv[2])
    print(f"callvault envelope vs python SDK: encrypt x{oe / pe:.1f}, decrypt x{od / pd:.1f}")
PY
