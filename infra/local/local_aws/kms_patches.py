"""Patches 1-4: moto 5.2.5's KMS patched in-process to behave like real AWS KMS.

Why: callvault's handling of disabled keys, keys pending deletion, key ARNs and RSA
keys can only be tested against an emulator that answers as real KMS does. Nothing
inside the virtualenv is edited; each patch closes one measured gap, so when moto
fixes a gap, delete its patch (and its test in test_moto_launcher.py).
``apply_patches()`` installs them all; ``server.main`` calls it before serving.

1. Key state is ignored by cryptographic operations.
   moto: Encrypt, Decrypt, GenerateDataKey(WithoutPlaintext) and ReEncrypt succeed on a
   disabled key or on a key pending deletion.
   Real KMS: HTTP 400 ``{"__type": "DisabledException", "message": "<key arn> is
   disabled."}`` for a Disabled key and ``{"__type": "KMSInvalidStateException",
   "message": "<key arn> is pending deletion."}`` for a PendingDeletion key.
   Patch: the KmsResponse methods check the state of the key first: the KeyId
   (Encrypt, GenerateDataKey*, Decrypt of an RSA ciphertext), the key named inside a
   symmetric ciphertext blob (Decrypt, and the source of ReEncrypt) and
   DestinationKeyId (ReEncrypt). Unknown keys are left to moto's own NotFound errors.
   (GenerateDataKeyPair* are not implemented by moto 5.2.5 at all; they fail with
   HTTP 500 whatever the key state, so there is nothing to patch there.)

2. DisableKey, EnableKey, ScheduleKeyDeletion and CancelKeyDeletion given a key ARN.
   moto: the response layer accepts the ARN but the backend indexes its key table
   with it, KeyError, HTTP 500.
   Real KMS: these four take a key id or a key ARN (aliases are rejected with
   NotFoundException, as moto already does), and ScheduleKeyDeletion and
   CancelKeyDeletion answer with the key ARN as KeyId.
   Patch: the four KmsBackend methods map a key ARN to the key id first; the two
   deletion responses report KeyId as the key ARN.

3. CancelKeyDeletion leaves the key enabled.
   moto: KeyState becomes "Disabled" but Enabled stays true.
   Real KMS: the key is left Disabled: KeyState "Disabled", Enabled false, and no
   DeletionDate.
   Patch: KmsBackend.cancel_key_deletion also sets ``enabled = False`` (DeletionDate
   is already omitted outside PendingDeletion).

4. RSA encryption is fake.
   moto: RSA keys (KeySpec RSA_2048/3072/4096) do get a real private key and
   GetPublicKey returns its DER SubjectPublicKeyInfo, but Encrypt and Decrypt ignore
   EncryptionAlgorithm and use moto's symmetric AES-GCM blob format, so a ciphertext
   made with the public key cannot be decrypted.
   Real KMS: RSAES_OAEP_SHA_256 is OAEP with SHA-256 and MGF1-SHA-256, RSAES_OAEP_SHA_1
   the same with SHA-1; Decrypt answers KeyId (key ARN), Plaintext and
   EncryptionAlgorithm; a bad ciphertext is InvalidCiphertextException (400); an
   algorithm that does not fit the key is InvalidKeyUsageException (400).
   Patch: for ENCRYPT_DECRYPT RSA keys, Encrypt encrypts with the key's public key and
   Decrypt (which needs KeyId, as in real KMS) decrypts with its private key. The key
   state rule of patch 1 applies too.

7. Multi-Region keys cannot decrypt (patches 5 and 6 are call_counter.py and faults.py).
   moto: a ciphertext blob holds its key id in a fixed 36-byte field, so the id of a
   multi-Region key (``mrk-`` and 32 hex digits, or ``mrk-`` and a 36-character UUID
   in moto) is cut short, and no region's Decrypt finds the key again:
   AccessDeniedException, for the primary as for its replicas.
   Real KMS: a multi-Region key and its replicas share their key material and key id,
   so a ciphertext made in one region decrypts in another region by the replica there
   (Decrypt with that region's ARN), the call staying in that region.
   Patch: a blob whose key id is longer than 36 characters is written with a marker
   and the id's length in front; reading it back gives the whole id (moto's own
   format is kept for every other key). ReplicateKey already shares the key material
   (moto copies the key object), so the replica in the other region decrypts.
"""

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from moto.core.exceptions import JsonRESTError
from moto.kms.models import Key, KmsBackend
from moto.kms.responses import KmsResponse
import struct

from moto.kms import utils as kms_utils


# --- Patch 1 and 4: key state and real RSA, in the KMS response layer -----------------

OAEP_HASHES = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}


def _find_key(response: KmsResponse, key_id: str | None) -> Key | None:
    """The key behind any id, ARN or alias; None if unknown (moto reports that)."""
    backend = response.kms_backend
    try:
        return backend.keys.get(backend.any_id_to_key_id(key_id))
    except Exception:
        return None


def _blob_key(response: KmsResponse, blob: bytes | None) -> Key | None:
    """The key named inside one of moto's symmetric ciphertext blobs."""
    try:
        return _find_key(response, kms_utils._deserialize_ciphertext_blob(blob).key_id)
    except Exception:
        return None


def _assert_usable(key: Key | None) -> None:
    if key is None:
        return
    if key.key_state == "Disabled":
        raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
    if key.key_state == "PendingDeletion":
        raise JsonRESTError("KMSInvalidStateException", f"{key.arn} is pending deletion.")


def _is_rsa_encryption_key(key: Key | None) -> bool:
    return (
        key is not None
        and key.key_usage == "ENCRYPT_DECRYPT"
        and key.key_spec.startswith("RSA_")
    )


def _oaep(key: Key, algorithm: str | None) -> padding.OAEP:
    if algorithm not in OAEP_HASHES:
        raise JsonRESTError(
            "InvalidKeyUsageException",
            f"{key.arn} key usage is ENCRYPT_DECRYPT with key spec {key.key_spec}, "
            f"which does not support encryption algorithm {algorithm or 'SYMMETRIC_DEFAULT'}.",
        )
    digest = OAEP_HASHES[algorithm]()
    return padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


_moto_encrypt = KmsResponse.encrypt
_moto_decrypt = KmsResponse.decrypt
_moto_re_encrypt = KmsResponse.re_encrypt
_moto_generate_data_key = KmsResponse.generate_data_key


def _encrypt(self: KmsResponse) -> str:
    key = _find_key(self, self._get_param("KeyId"))
    _assert_usable(key)
    if not _is_rsa_encryption_key(key):
        return _moto_encrypt(self)
    algorithm = self._get_param("EncryptionAlgorithm")
    oaep = _oaep(key, algorithm)
    public_key = key.private_key.private_key.public_key()
    try:
        blob = public_key.encrypt(self._get_param("Plaintext"), oaep)
    except ValueError as err:  # plaintext too long for this key size and hash
        raise JsonRESTError("ValidationException", str(err))
    return json.dumps(
        {"CiphertextBlob": _b64(blob), "KeyId": key.arn, "EncryptionAlgorithm": algorithm}
    )


def _decrypt(self: KmsResponse) -> str:
    key_id = self._get_param("KeyId")
    if key_id:
        self._validate_key_id(key_id)
        key = _find_key(self, key_id)
    else:
        key = _blob_key(self, self._get_param("CiphertextBlob"))
    _assert_usable(key)
    if not _is_rsa_encryption_key(key):
        return _moto_decrypt(self)
    algorithm = self._get_param("EncryptionAlgorithm")
    oaep = _oaep(key, algorithm)
    try:
        plaintext = key.private_key.private_key.decrypt(
            self._get_param("CiphertextBlob"), oaep
        )
    except ValueError:
        raise JsonRESTError("InvalidCiphertextException", "")
    return json.dumps(
        {"KeyId": key.arn, "Plaintext": _b64(plaintext), "EncryptionAlgorithm": algorithm}
    )


def _re_encrypt(self: KmsResponse) -> str:
    _assert_usable(_blob_key(self, self._get_param("CiphertextBlob")))
    _assert_usable(_find_key(self, self._get_param("DestinationKeyId")))
    return _moto_re_encrypt(self)


def _generate_data_key(self: KmsResponse) -> str:
    # GenerateDataKeyWithoutPlaintext calls this too.
    _assert_usable(_find_key(self, self._get_param("KeyId")))
    return _moto_generate_data_key(self)


# --- Patch 2 and 3: key ARNs in Enable/Disable/Schedule/Cancel; Cancel disables --------

_moto_cancel_key_deletion = KmsBackend.cancel_key_deletion


def _accept_key_arn(method):
    def patched(self: KmsBackend, key_id: str, *args, **kwargs):
        return method(self, self.get_key_id(key_id), *args, **kwargs)

    return patched


def _cancel_key_deletion(self: KmsBackend, key_id: str) -> None:
    _moto_cancel_key_deletion(self, key_id)
    self.keys[key_id].enabled = False


def _answer_key_arn(method):
    def patched(self: KmsResponse) -> str:
        body = json.loads(method(self))
        body["KeyId"] = _find_key(self, body["KeyId"]).arn
        return json.dumps(body)

    return patched


# --- Patch 7: multi-Region key ids in ciphertext blobs ----------------------------------

LONG_ID_MARKER = b"\x00cv-long-key-id\x00"
MOTO_SERIALIZE = kms_utils._serialize_ciphertext_blob
MOTO_DESERIALIZE = kms_utils._deserialize_ciphertext_blob


def _serialize_ciphertext_blob(ciphertext) -> bytes:
    key_id = ciphertext.key_id.encode("utf-8")
    if len(key_id) <= kms_utils.KEY_ID_LEN:
        return MOTO_SERIALIZE(ciphertext)
    header = LONG_ID_MARKER + struct.pack(">H", len(key_id)) + key_id
    return header + ciphertext.iv + ciphertext.tag + ciphertext.ciphertext


def _deserialize_ciphertext_blob(ciphertext_blob: bytes):
    if not ciphertext_blob.startswith(LONG_ID_MARKER):
        return MOTO_DESERIALIZE(ciphertext_blob)
    at = len(LONG_ID_MARKER)
    (length,) = struct.unpack(">H", ciphertext_blob[at:at + 2])
    at += 2
    key_id = ciphertext_blob[at:at + length].decode("utf-8")
    at += length
    iv = ciphertext_blob[at:at + kms_utils.IV_LEN]
    at += kms_utils.IV_LEN
    tag = ciphertext_blob[at:at + kms_utils.TAG_LEN]
    at += kms_utils.TAG_LEN
    return kms_utils.Ciphertext(key_id=key_id, iv=iv, ciphertext=ciphertext_blob[at:], tag=tag)


def apply_patches() -> None:
    kms_utils._serialize_ciphertext_blob = _serialize_ciphertext_blob
    kms_utils._deserialize_ciphertext_blob = _deserialize_ciphertext_blob
    KmsResponse.encrypt = _encrypt
    KmsResponse.decrypt = _decrypt
    KmsResponse.re_encrypt = _re_encrypt
    KmsResponse.generate_data_key = _generate_data_key
    KmsBackend.cancel_key_deletion = _cancel_key_deletion
    for name in ("disable_key", "enable_key", "schedule_key_deletion", "cancel_key_deletion"):
        setattr(KmsBackend, name, _accept_key_arn(getattr(KmsBackend, name)))
    for name in ("schedule_key_deletion", "cancel_key_deletion"):
        setattr(KmsResponse, name, _answer_key_arn(getattr(KmsResponse, name)))
