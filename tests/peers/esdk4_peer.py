#!/usr/bin/env python3
"""Command-line peer over the official Python AWS Encryption SDK 4.x + Material Providers Library.

Used by the Rust interop tests to produce and consume AWS Encryption SDK messages with the
reference implementation. Run it with the interpreter of the esdk4 virtualenv
(infra/local/.venv/esdk4/bin/python, made by infra/local/setup.sh).

Usage
-----
  esdk4_peer.py encrypt --key ARN [--key ARN ...] [--rsa-public-key-pem FILE]
                        [--context k=v ...] [--frame-length N] IN OUT
  esdk4_peer.py decrypt --key ARN [--key ARN ...] [--rsa] [--context k=v ...]
                        [--max-encrypted-data-keys N] IN OUT
  esdk4_peer.py batch JOBS RESULTS

IN, OUT, JOBS and RESULTS are file paths; "-" means stdin / stdout.

encrypt
  Commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT, algorithm suite
  AES_256_GCM_HKDF_SHA512_COMMIT_KEY (0x0478, committing, unsigned), framed content with
  --frame-length bytes per frame (default 4096). The message is format version 2, so it
  starts with the bytes 02 04 78.
  Keyring:
    one --key                       AWS KMS keyring (CreateAwsKmsKeyringInput)
    several --key                   multi-keyring: the first key's AWS KMS keyring is the
                                    generator, the others are child keyrings
    --rsa-public-key-pem FILE       AWS KMS RSA keyring (CreateAwsKmsRsaKeyringInput) with
                                    that PEM SubjectPublicKeyInfo, the (single) --key ARN
                                    and RSAES_OAEP_SHA_256. Encrypting with the RSA keyring
                                    makes no KMS call. The RSA keyring refuses signed
                                    suites; 0x0478 is unsigned, so it is accepted.
  --context k=v (repeatable) is the encryption context (split at the first "=").

decrypt
  Same commitment policy and keyrings as encrypt; with --rsa the AWS KMS RSA keyring
  without public key (kms key id + KMS client, RSAES_OAEP_SHA_256; it calls KMS Decrypt
  with that key id). The --context pairs are given to the SDK's decrypt call as its
  encryption_context argument (the MPL's "reproduced encryption context"); the peer adds
  no check of its own. Observed behaviour (SDK 4.0.7, MPL 1.11.3):
    - a pair whose key is in the message with another value fails with
      "Encryption context does not match reproduced encryption context.";
    - a pair whose key is absent from the message also fails: the default CMM appends
      it to the context used to unwrap the data key, so KMS Decrypt rejects it (KMS
      keyring: "No Configured KMS Key was able to decrypt the Data Key ...") or the
      EC digest check fails (RSA keyring);
    - a subset of the message's pairs (or none) succeeds.
  Signed messages (e.g. suite 0x0578) are decrypted too; nothing enforces "unsigned".
  --max-encrypted-data-keys N sets the client's limit (default: no limit).

Note: the SDK keeps a message's encrypted data keys in a Python set before writing the
header, so the order of the EDKs in the header varies from run to run; the generator's
EDK is not necessarily the first.

KMS clients
  One boto3 KMS client per region; the region is taken from each key ARN
  (arn:aws:kms:REGION:...), else from AWS_REGION / AWS_DEFAULT_REGION. boto3 itself
  honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_KMS), so the local moto launcher is used
  when that variable is set. Credentials come from the usual boto3 chain (environment).

Output and exit status
  Success: OUT is written (atomically: a temporary file in OUT's directory is renamed over
  it), stdout stays empty, nothing on stderr, exit 0.
  Failure of the operation: OUT is neither created nor modified, exit 1, and stderr gets
  exactly one line "esdk4_peer: <ExcType>: <message>" (with " [causes: ...]" appended
  when the MPL reports a list of errors). The SDK's own logged "Error on closing"
  traceback is silenced; set ESDK4_PEER_TRACE=1 to see it and the peer's traceback.
  Bad command line: argparse usage message on stderr, exit 2.

batch
  Starting Python and importing the SDK/MPL (Dafny-generated code) costs about 1.2-2 s
  of CPU per process, while an operation itself takes milliseconds (about 30 ms for a
  100 KB KMS job against the local moto), so many operations should go through one
  "batch" process. JOBS is a JSON list of jobs:
    {"op": "encrypt", "keys": [ARN, ...] (or one ARN string),
     "rsa_public_key_pem": FILE (optional),
     "context": {"k": "v", ...} (optional), "frame_length": N (optional),
     "in": PATH, "out": PATH}
    {"op": "decrypt", "keys": [ARN, ...], "rsa": false, "context": {...},
     "max_encrypted_data_keys": N (optional), "in": PATH, "out": PATH}
  Jobs run in order, each exactly as the single command would. RESULTS gets a JSON list
  with one object per job, in order: {"ok": true} or {"ok": false, "error": "<ExcType>:
  <message>"}. Exit 0 when every job succeeded, 1 when at least one failed (RESULTS is
  written in both cases), 2 when JOBS is unreadable or malformed (nothing is run). A
  failing job's "out" is not written, as for the single commands.
"""

import argparse
import json
import logging
import os
import re
import sys
import tempfile

import boto3

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import (
    CreateAwsKmsKeyringInput,
    CreateAwsKmsRsaKeyringInput,
    CreateMultiKeyringInput,
)

ALGORITHM = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY  # 0x0478
COMMITMENT_POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
RSA_ALGORITHM = "RSAES_OAEP_SHA_256"
DEFAULT_FRAME_LENGTH = 4096

# The SDK logs a second traceback ("Error on closing" / "Footer not read") through the
# logging module when a decryption fails; with no handler Python would print it on stderr.
# Silence it so that stderr carries only the peer's one-line error (ESDK4_PEER_TRACE=1
# restores the SDK's logging and also prints the peer's own traceback).
_TRACE = os.environ.get("ESDK4_PEER_TRACE") == "1"
if not _TRACE:
    logging.getLogger("aws_encryption_sdk").addHandler(logging.NullHandler())

_ARN_REGION = re.compile(r"^arn:[^:]+:kms:([^:]+):")
_mpl = None
_kms_clients = {}


class UsageError(Exception):
    """A job that cannot be run as written (bad arguments)."""


def _materials_providers():
    global _mpl
    if _mpl is None:
        _mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return _mpl


def _kms_client(key_id):
    match = _ARN_REGION.match(key_id)
    region = match.group(1) if match else (
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    client = _kms_clients.get(region)
    if client is None:
        # endpoint_url is left to boto3, which reads AWS_ENDPOINT_URL(_KMS) itself.
        client = boto3.client("kms", region_name=region)
        _kms_clients[region] = client
    return client


def _kms_keyring(key_id):
    return _materials_providers().create_aws_kms_keyring(
        input=CreateAwsKmsKeyringInput(kms_key_id=key_id, kms_client=_kms_client(key_id)))


def _rsa_keyring(key_id, public_key_pem=None):
    return _materials_providers().create_aws_kms_rsa_keyring(
        input=CreateAwsKmsRsaKeyringInput(
            kms_key_id=key_id,
            encryption_algorithm=RSA_ALGORITHM,
            public_key=public_key_pem,
            kms_client=_kms_client(key_id),
        ))


def _keyring(keys, rsa=False, public_key_pem=None):
    if not keys:
        raise UsageError("at least one key is required")
    if rsa:
        if len(keys) != 1:
            raise UsageError("the RSA keyring takes exactly one key")
        return _rsa_keyring(keys[0], public_key_pem)
    if len(keys) == 1:
        return _kms_keyring(keys[0])
    return _materials_providers().create_multi_keyring(
        input=CreateMultiKeyringInput(
            generator=_kms_keyring(keys[0]),
            child_keyrings=[_kms_keyring(k) for k in keys[1:]],
        ))


def _read(path):
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".esdk4_peer.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _client(max_encrypted_data_keys=None):
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=COMMITMENT_POLICY,
        max_encrypted_data_keys=max_encrypted_data_keys,
    )


def encrypt(keys, src, dst, context=None, frame_length=DEFAULT_FRAME_LENGTH,
            rsa_public_key_pem=None):
    """Encrypt file src to file dst; see the module docstring."""
    public_key = None
    if rsa_public_key_pem is not None:
        with open(rsa_public_key_pem, "rb") as f:
            public_key = f.read()
    keyring = _keyring(keys, rsa=public_key is not None, public_key_pem=public_key)
    ciphertext, _header = _client().encrypt(
        source=_read(src),
        keyring=keyring,
        encryption_context=dict(context or {}),
        algorithm=ALGORITHM,
        frame_length=int(frame_length),
    )
    _write(dst, ciphertext)


def decrypt(keys, src, dst, context=None, rsa=False, max_encrypted_data_keys=None):
    """Decrypt file src to file dst; see the module docstring."""
    keyring = _keyring(keys, rsa=rsa)
    kwargs = {}
    if context:
        kwargs["encryption_context"] = dict(context)
    plaintext, _header = _client(max_encrypted_data_keys).decrypt(
        source=_read(src), keyring=keyring, **kwargs)
    _write(dst, plaintext)


def _error_text(exc):
    """ExcType: message, plus the causes an MPL CollectionOfErrors carries in .list."""
    text = "%s: %s" % (type(exc).__name__, str(exc).strip() or "(no message)")
    inner = exc.args[0] if exc.args else None
    causes = getattr(exc, "list", None) or getattr(inner, "list", None)
    if isinstance(causes, list) and causes:
        text += " [causes: %s]" % "; ".join(_error_text(c) for c in causes)
    return " ".join(text.split())  # one line


def _run_job(job):
    if not isinstance(job, dict):
        raise UsageError("a job must be a JSON object")
    op = job.get("op")
    keys = job.get("keys")
    if isinstance(keys, str):
        keys = [keys]
    context = job.get("context") or {}
    if not isinstance(context, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise UsageError("context must be an object of strings")
    missing = [f for f in ("in", "out") if not isinstance(job.get(f), str)]
    if op in ("encrypt", "decrypt") and missing:
        raise UsageError("missing or non-string field(s): %s" % ", ".join(missing))
    frame_length = job.get("frame_length", DEFAULT_FRAME_LENGTH)
    if isinstance(frame_length, bool) or not isinstance(frame_length, int) or frame_length < 1:
        raise UsageError("frame_length must be a positive integer")
    if op == "encrypt":
        encrypt(keys, job["in"], job["out"], context=context, frame_length=frame_length,
                rsa_public_key_pem=job.get("rsa_public_key_pem"))
    elif op == "decrypt":
        decrypt(keys, job["in"], job["out"], context=context, rsa=bool(job.get("rsa", False)),
                max_encrypted_data_keys=job.get("max_encrypted_data_keys"))
    else:
        raise UsageError("unknown op %r" % (op,))


def batch(jobs_path, results_path):
    try:
        jobs = json.loads(_read(jobs_path))
        if not isinstance(jobs, list):
            raise ValueError("JOBS must be a JSON list")
    except (OSError, ValueError) as exc:
        sys.stderr.write("esdk4_peer: %s\n" % _error_text(exc))
        return 2
    results = []
    for job in jobs:
        try:
            _run_job(job)
            results.append({"ok": True})
        except Exception as exc:  # pylint: disable=broad-except
            results.append({"ok": False, "error": _error_text(exc)})
    _write(results_path, (json.dumps(results) + "\n").encode("utf-8"))
    return 0 if all(r["ok"] for r in results) else 1


def _context_pair(text):
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected k=v, got %r" % text)
    return key, value


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _parser():
    parser = argparse.ArgumentParser(
        prog="esdk4_peer.py",
        description="AWS Encryption SDK (Python 4.x + MPL) peer for interop tests.")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encrypt", help="encrypt IN to OUT (suite 0x0478, framed)")
    enc.add_argument("--key", action="append", required=True, metavar="ARN",
                     help="KMS key ARN; repeat for a multi-keyring (first = generator)")
    enc.add_argument("--rsa-public-key-pem", metavar="FILE",
                     help="use the AWS KMS RSA keyring with this PEM public key")
    enc.add_argument("--context", action="append", default=[], type=_context_pair,
                     metavar="K=V", help="encryption context pair (repeatable)")
    enc.add_argument("--frame-length", type=_positive_int, default=DEFAULT_FRAME_LENGTH,
                     metavar="N", help="frame length in bytes (default 4096)")
    enc.add_argument("input", metavar="IN")
    enc.add_argument("output", metavar="OUT")

    dec = sub.add_parser("decrypt", help="decrypt IN to OUT")
    dec.add_argument("--key", action="append", required=True, metavar="ARN",
                     help="KMS key ARN; repeat for a multi-keyring")
    dec.add_argument("--rsa", action="store_true",
                     help="use the AWS KMS RSA keyring (RSAES_OAEP_SHA_256)")
    dec.add_argument("--context", action="append", default=[], type=_context_pair,
                     metavar="K=V", help="expected encryption context pair (repeatable)")
    dec.add_argument("--max-encrypted-data-keys", type=_positive_int, metavar="N")
    dec.add_argument("input", metavar="IN")
    dec.add_argument("output", metavar="OUT")

    bat = sub.add_parser("batch", help="run a JSON list of jobs in one process")
    bat.add_argument("jobs", metavar="JOBS")
    bat.add_argument("results", metavar="RESULTS")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "batch":
        return batch(args.jobs, args.results)
    try:
        if args.command == "encrypt":
            encrypt(args.key, args.input, args.output, context=dict(args.context),
                    frame_length=args.frame_length,
                    rsa_public_key_pem=args.rsa_public_key_pem)
        else:
            decrypt(args.key, args.input, args.output, context=dict(args.context),
                    rsa=args.rsa, max_encrypted_data_keys=args.max_encrypted_data_keys)
    except Exception as exc:  # pylint: disable=broad-except
        if _TRACE:
            import traceback  # pylint: disable=import-outside-toplevel
            traceback.print_exc()
        sys.stderr.write("esdk4_peer: %s\n" % _error_text(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
