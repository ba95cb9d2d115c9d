"""Run moto (5.2.5) as a local AWS KMS on 127.0.0.1, patched to behave like real KMS.

Usage: python moto_launcher.py [--port N]     (N = 0, the default, picks a free port)

Binds 127.0.0.1 only. Once the server accepts connections it prints exactly one line,
``READY http://127.0.0.1:<port>``, on stdout, then serves until SIGTERM or SIGINT.
Requests are not logged; only server errors (5xx) get a short line on stderr.

moto is patched in-process; nothing inside the virtualenv is edited. Each patch below
closes one measured gap between moto 5.2.5 and real AWS KMS. When moto fixes a gap,
delete its patch (and its test in test_moto_launcher.py).

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

5. A call counter for tests (not a moto gap, a test aid).
   Every KMS request is counted by operation, taken from its X-Amz-Target header
   ("TrentService.Decrypt" -> "Decrypt"), and by key, for each of KeyId, SourceKeyId
   and DestinationKeyId present in the request (as sent: id, ARN or alias).
     GET  /_callvault/kms-calls         -> {"Decrypt": 3, "GenerateDataKey": 1, ...}
     GET  /_callvault/kms-calls/by-key  -> {"<key as sent>": {"Decrypt": 2, ...}, ...}
     POST /_callvault/kms-calls/reset   -> zeroes both ({} afterwards)
   moto's own ``POST /moto-api/reset`` keeps working and zeroes the counters too.
   A KMS request failed by a fault rule (item 6) is counted all the same: the counter
   sits in front of the fault injector and counts what clients sent.

6. Fault injection for tests (not a moto gap, a test aid).
   Rules make chosen requests to any service fail before moto sees them.
     POST   /_callvault/faults  {"method": "PUT", "path_contains": "/vault-bucket/",
                                 "query_contains": "partNumber=2",
                                 "target": "DynamoDB_20120810.TransactWriteItems",
                                 "skip": 0, "times": 1, "status": 500,
                                 "code": "InternalError", "message": "injected"}
                                -> {"id": 1}
     GET    /_callvault/faults  -> [{"id": 1, ...the rule..., "matched": 3,
                                     "skipped": 0, "failed": 1}, ...]
     DELETE /_callvault/faults  -> {"removed": <number of rules>}
   Matchers, all optional but at least one required (HTTP 400 otherwise), all must
   hold: ``method`` equals REQUEST_METHOD (case-insensitive); ``path_contains`` is a
   substring of the raw request path as the client sent it, percent-encoding and all
   (S3 is path style: ``/bucket/key%20with%20spaces``; werkzeug's PATH_INFO is
   already percent-decoded, so the path is taken from REQUEST_URI); ``query_contains``
   is a substring of the raw query string; ``target`` equals the X-Amz-Target header
   (JSON protocol: DynamoDB, KMS, SQS...). ``skip`` (default 0) matching requests are
   let through first, then ``times`` (default null: no limit) are failed with
   ``status`` (default 500, 400-599), ``code`` (default "InternalError") and
   ``message`` (default "fault injected by rule <id>"). Unknown fields are a 400.
   Rules are tried in the order added; the first one whose matchers hold and that has
   failures left decides (lets the request through while skipping, else fails it);
   an exhausted rule no longer decides anything. "matched" counts every request its
   matchers held for, decided or not; "skipped" and "failed" what it decided.
   A failed request's body is read and discarded first (a client streaming a large
   upload sees the error, not a reset connection). The error is in the protocol of
   the request: with X-Amz-Target, JSON ``{"__type": code, "message": message}``
   (application/x-amz-json-1.0, header x-amzn-ErrorType: code); without, S3's XML
   ``<Error><Code>..</Code><Message>..</Message><RequestId>callvault-fault</RequestId>
   </Error>`` (application/xml; no body for HEAD). /_callvault/ and /moto-api/
   requests are never failed. ``POST /moto-api/reset`` removes every rule too.
"""

import argparse
import base64
import io
import json
import signal
import sys
import threading
from collections import Counter, defaultdict
from http import HTTPStatus
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from moto.core.exceptions import JsonRESTError
from moto.kms.models import Key, KmsBackend
from moto.kms.responses import KmsResponse
from moto.kms.utils import _deserialize_ciphertext_blob
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


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
        return _find_key(response, _deserialize_ciphertext_blob(blob).key_id)
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


def apply_patches() -> None:
    KmsResponse.encrypt = _encrypt
    KmsResponse.decrypt = _decrypt
    KmsResponse.re_encrypt = _re_encrypt
    KmsResponse.generate_data_key = _generate_data_key
    KmsBackend.cancel_key_deletion = _cancel_key_deletion
    for name in ("disable_key", "enable_key", "schedule_key_deletion", "cancel_key_deletion"):
        setattr(KmsBackend, name, _accept_key_arn(getattr(KmsBackend, name)))
    for name in ("schedule_key_deletion", "cancel_key_deletion"):
        setattr(KmsResponse, name, _answer_key_arn(getattr(KmsResponse, name)))


# --- Patch 5: the KMS call counter, as WSGI middleware --------------------------------


class CallCounter:
    """Counts KMS requests and serves /_callvault/kms-calls in front of moto's app."""

    PATH = "/_callvault/kms-calls"
    KEY_FIELDS = ("KeyId", "SourceKeyId", "DestinationKeyId")

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.by_operation = Counter()
            self.by_key = defaultdict(Counter)

    def count(self, environ) -> None:
        operation = environ["HTTP_X_AMZ_TARGET"].split(".", 1)[-1]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        with self.lock:
            self.by_operation[operation] += 1
            for field in self.KEY_FIELDS:
                if isinstance(params.get(field), str):
                    self.by_key[params[field]][operation] += 1

    def serve(self, method: str, path: str, start_response):
        if (method, path) == ("POST", self.PATH + "/reset"):
            self.reset()
            answer = {}
        elif method == "GET" and path in (self.PATH, self.PATH + "/by-key"):
            with self.lock:
                if path == self.PATH:
                    answer = dict(self.by_operation)
                else:
                    answer = {key: dict(ops) for key, ops in self.by_key.items()}
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"message": "unknown /_callvault route"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", "").rstrip("/"), environ["REQUEST_METHOD"]
        if path.startswith(self.PATH):
            return self.serve(method, path, start_response)
        if path == "/moto-api/reset" and method == "POST":
            self.reset()
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("TrentService."):
            self.count(environ)
        return self.app(environ, start_response)


# --- Patch 6: fault injection, as WSGI middleware -------------------------------------


def _undance(value: str) -> str:
    """Undo WSGI's latin-1 "encoding dance" on a raw environ string (UTF-8 bytes)."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


def _raw_path(environ) -> str:
    """The request path as the client sent it, still percent-encoded.

    werkzeug's PATH_INFO is percent-decoded; REQUEST_URI is the raw request target
    (path and query, or an absolute URL).
    """
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if not raw:
        return _undance(environ.get("PATH_INFO", ""))
    url = urlsplit(_undance(raw))
    if not url.scheme and url.netloc:  # "//a/b": werkzeug does the same
        return f"/{url.netloc}{url.path}"
    return url.path


class FaultRule:
    MATCHERS = ("method", "path_contains", "query_contains", "target")
    FIELDS = MATCHERS + ("skip", "times", "status", "code", "message")

    def __init__(self, rule_id: int, spec) -> None:
        if not isinstance(spec, dict):
            raise ValueError("the body must be a JSON object")
        unknown = sorted(set(spec) - set(self.FIELDS))
        if unknown:
            raise ValueError(f"unknown fields {unknown}; known: {list(self.FIELDS)}")
        self.id = rule_id
        self.matchers = {}
        for name in self.MATCHERS:
            value = spec.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
            self.matchers[name] = value.upper() if name == "method" else value
        if not self.matchers:
            raise ValueError(f"a rule needs at least one of {list(self.MATCHERS)}")
        self.skip = self._int(spec, "skip", 0, 0, None)
        self.times = self._int(spec, "times", None, 0, None)
        self.status = self._int(spec, "status", 500, 400, 599)
        self.code = self._str(spec, "code", "InternalError")
        if not self.code.isprintable():  # it goes into the x-amzn-ErrorType header
            raise ValueError("code must be printable (no CR, LF...)")
        self.message = self._str(spec, "message", f"fault injected by rule {rule_id}")
        self.matched = self.skipped = self.failed = 0

    @staticmethod
    def _int(spec, name, default, low, high):
        value = spec.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer")
        if value < low or (high is not None and value > high):
            raise ValueError(f"{name} must be in [{low}, {high if high is not None else ''}]")
        return value

    @staticmethod
    def _str(spec, name, default):
        value = spec.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
        return value

    def holds_for(self, request: dict) -> bool:
        m = self.matchers
        return (
            ("method" not in m or request["method"] == m["method"])
            and ("path_contains" not in m or m["path_contains"] in request["path"])
            and ("query_contains" not in m or m["query_contains"] in request["query"])
            and ("target" not in m or request["target"] == m["target"])
        )

    def has_failures_left(self) -> bool:
        return self.times is None or self.failed < self.times

    def describe(self) -> dict:
        return {
            "id": self.id,
            **self.matchers,
            "skip": self.skip,
            "times": self.times,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "matched": self.matched,
            "skipped": self.skipped,
            "failed": self.failed,
        }


class FaultInjector:
    """Fails requests chosen by rules, and serves /_callvault/faults, in front of moto's app."""

    PATH = "/_callvault/faults"
    NEVER_FAILED = ("/_callvault/", "/moto-api/")
    DRAIN_CHUNK = 1 << 20

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self.next_id = 1

    def clear(self) -> int:
        with self.lock:
            removed, self.rules = len(self.rules), []
            return removed

    def add(self, environ) -> dict:
        body = self.read_body(environ)
        try:
            spec = json.loads(body or b"null")
        except ValueError as err:
            raise ValueError(f"the body is not JSON: {err}")
        with self.lock:
            rule = FaultRule(self.next_id, spec)
            self.next_id += 1
            self.rules.append(rule)
        return {"id": rule.id}

    def serve(self, method: str, environ, start_response):
        status = "200 OK"
        try:
            if method == "POST":
                answer = self.add(environ)
            elif method == "GET":
                with self.lock:
                    answer = [rule.describe() for rule in self.rules]
            elif method == "DELETE":
                answer = {"removed": self.clear()}
            else:
                status, answer = "405 Method Not Allowed", {"message": "GET, POST or DELETE"}
        except ValueError as err:
            status, answer = "400 Bad Request", {"message": str(err)}
        body = json.dumps(answer).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    @staticmethod
    def read_body(environ) -> bytes:
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug dechunks to EOF
            return stream.read()
        try:
            length = max(int(environ.get("CONTENT_LENGTH") or 0), 0)
        except ValueError:
            length = 0
        return stream.read(length) if length else b""

    def drain(self, environ) -> None:
        """Read and discard the request body, a chunk at a time."""
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):
            while stream.read(self.DRAIN_CHUNK):
                pass
            return
        try:
            left = max(int(environ.get("CONTENT_LENGTH") or 0), 0)
        except ValueError:
            left = 0
        while left:
            data = stream.read(min(left, self.DRAIN_CHUNK))
            if not data:
                break
            left -= len(data)

    def decide(self, environ) -> FaultRule | None:
        """The rule that fails this request, if any (counting as it goes)."""
        request = {
            "method": environ["REQUEST_METHOD"].upper(),
            "path": _raw_path(environ),
            "query": _undance(environ.get("QUERY_STRING", "")),
            "target": environ.get("HTTP_X_AMZ_TARGET"),
        }
        with self.lock:
            decider = None
            for rule in self.rules:
                if not rule.holds_for(request):
                    continue
                rule.matched += 1
                if decider is None and rule.has_failures_left():
                    decider = rule
            if decider is None:
                return None
            if decider.skipped < decider.skip:
                decider.skipped += 1
                return None
            decider.failed += 1
            return decider

    def fail(self, rule: FaultRule, environ, start_response):
        self.drain(environ)
        if environ.get("HTTP_X_AMZ_TARGET"):
            body = json.dumps({"__type": rule.code, "message": rule.message}).encode()
            headers = [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-ErrorType", rule.code),
                ("x-amzn-RequestId", "callvault-fault"),
            ]
        else:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{escape(rule.code)}</Code>"
                f"<Message>{escape(rule.message)}</Message>"
                "<RequestId>callvault-fault</RequestId></Error>"
            ).encode()
            headers = [("Content-Type", "application/xml"), ("x-amz-request-id", "callvault-fault")]
        if environ["REQUEST_METHOD"].upper() == "HEAD":
            body = b""
        headers.append(("Content-Length", str(len(body))))
        try:
            reason = HTTPStatus(rule.status).phrase
        except ValueError:
            reason = "Injected Fault"
        start_response(f"{rule.status} {reason}", headers)
        return [body]

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", "").rstrip("/"), environ["REQUEST_METHOD"]
        if path == self.PATH:
            return self.serve(method, environ, start_response)
        if path == "/moto-api/reset" and method == "POST":
            self.clear()
        if not (path + "/").startswith(self.NEVER_FAILED):
            rule = self.decide(environ)
            if rule is not None:
                return self.fail(rule, environ, start_response)
        return self.app(environ, start_response)


# --- The server -----------------------------------------------------------------------


class QuietRequestHandler(MotoRequestHandler):
    """No per-request log; a short stderr line for server errors only."""

    def log_request(self, code="-", size="-") -> None:
        if str(code).startswith("5"):
            sys.stderr.write(f"moto: {self.requestline} -> {code}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when standard input closes: a test process that dies, however, takes its server with it",
    )
    args = parser.parse_args(argv)

    apply_patches()
    # The counter is outermost: it counts KMS requests that a fault rule then fails.
    app = CallCounter(FaultInjector(DomainDispatcherApplication(create_backend_app)))
    server = make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=QuietRequestHandler
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
