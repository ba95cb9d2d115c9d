#!/usr/bin/env python3
"""Writes the official test vectors: messages encrypted by the official AWS
Encryption SDK for Python (4.x, with the material providers library) under its
raw AES keyring, so decrypting them needs no KMS.

    infra/local/setup.sh   # once: installs the SDK into infra/local/.venv/esdk4
    infra/local/.venv/esdk4/bin/python functions/envelope/tests/vectors/generate.py

Writes, beside this script:
  keys.json          the raw AES wrapping keys (namespace, name, key as hex)
  manifest.json      one entry per message: its file, its plaintext's file,
                     the frame length, the encryption context and the keys it
                     was encrypted to (one encrypted data key each; the SDK
                     does not keep this order in the header)
  messages/*.ct      the messages (suite 0x0478, committing, unsigned)
  plaintexts/*.pt    the expected plaintexts

The wrapping keys are fixed (test keys, never used for anything else); every
run draws new data keys, message ids and IVs, so a rerun rewrites every
message. `cargo test -p envelope` (tests/official_vectors.rs) decrypts them
with no Python.
"""
import json
import os
import sys

import aws_encryption_sdk
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import (
    AesWrappingAlg,
    CreateMultiKeyringInput,
    CreateRawAesKeyringInput,
)
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import AlgorithmSuite

HERE = os.path.dirname(os.path.abspath(__file__))
NAMESPACE = "callvault-vectors"
KEYS = {
    "aes-1": bytes(range(32)),
    "aes-2": bytes((0xA0 + i) % 256 for i in range(32)),
    "aes-3": bytes((7 * i + 3) % 256 for i in range(32)),
}
ORG = {"org": "acme", "type": "calls", "id": "2026/11/29/call-0001.wav"}
LARGE = {f"attribute-{i:03}": "v" * 40 + f"-{i}" for i in range(150)}  # ~9.5 KiB serialized

# (name, frame length, plaintext length, context, keys)
CASES = [
    ("f128-empty", 128, 0, ORG, ["aes-1"]),
    ("f128-one-byte", 128, 1, ORG, ["aes-1"]),
    ("f128-one-frame", 128, 128, ORG, ["aes-1"]),
    ("f128-two-frames", 128, 256, {}, ["aes-1"]),
    ("f128-several", 128, 1000, ORG, ["aes-1", "aes-2"]),
    ("f4k-empty-context", 4096, 4096 * 3 + 17, {}, ["aes-1"]),
    ("f4k-exact", 4096, 4096 * 2, ORG, ["aes-2"]),
    ("f4k-three-keys", 4096, 10_000, ORG, ["aes-1", "aes-2", "aes-3"]),
    ("f4k-large-context", 4096, 5000, LARGE, ["aes-1", "aes-3"]),
    ("f64k-one-byte", 65536, 1, ORG, ["aes-3"]),
    ("f64k-exact", 65536, 65536, ORG, ["aes-1"]),
    ("f64k-several", 65536, 65536 * 2 + 1234, ORG, ["aes-1", "aes-2"]),
]


def plaintext(n, seed):
    return bytes((i * 131 + seed * 17 + (i >> 8)) % 256 for i in range(n))


def keyring(mpl, names):
    rings = [
        mpl.create_raw_aes_keyring(
            CreateRawAesKeyringInput(
                key_namespace=NAMESPACE,
                key_name=name,
                wrapping_key=KEYS[name],
                wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
            )
        )
        for name in names
    ]
    if len(rings) == 1:
        return rings[0]
    return mpl.create_multi_keyring(CreateMultiKeyringInput(generator=rings[0], child_keyrings=rings[1:]))


def main():
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    os.makedirs(os.path.join(HERE, "messages"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "plaintexts"), exist_ok=True)
    manifest = []
    for seed, (name, frame, length, context, names) in enumerate(CASES):
        pt = plaintext(length, seed)
        ct, header = client.encrypt(
            source=pt,
            keyring=keyring(mpl, names),
            encryption_context=context,
            frame_length=frame,
            algorithm=AlgorithmSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        )
        assert header.algorithm.algorithm_id == 0x0478, header.algorithm
        # The SDK reads back what it wrote, before it is checked in.
        back, _ = client.decrypt(source=ct, keyring=keyring(mpl, names))
        assert back == pt, name
        with open(os.path.join(HERE, "messages", name + ".ct"), "wb") as f:
            f.write(ct)
        with open(os.path.join(HERE, "plaintexts", name + ".pt"), "wb") as f:
            f.write(pt)
        manifest.append(
            {
                "name": name,
                "message": f"messages/{name}.ct",
                "plaintext": f"plaintexts/{name}.pt",
                "frame_length": frame,
                "encryption_context": context,
                "keys": names,
            }
        )
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(
            {
                "generator": f"aws-encryption-sdk {aws_encryption_sdk.__version__} (Python), raw AES keyring",
                "suite": "0x0478",
                "vectors": manifest,
            },
            f,
            indent=1,
        )
        f.write("\n")
    with open(os.path.join(HERE, "keys.json"), "w") as f:
        json.dump(
            {"namespace": NAMESPACE, "keys": {n: k.hex() for n, k in KEYS.items()}},
            f,
            indent=1,
        )
        f.write("\n")
    print(f"wrote {len(manifest)} vectors", file=sys.stderr)


if __name__ == "__main__":
    main()
