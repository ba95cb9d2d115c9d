"""Patch 5: counts KMS calls, as WSGI middleware in front of moto's app.

Why: tests assert which KMS calls callvault makes with which key (the key cache
saves Decrypts; an RSA key is never called), and moto records nothing like
CloudTrail.

5. A call counter for tests (not a moto gap, a test aid).
   Every KMS request is counted by operation, taken from its X-Amz-Target header
   ("TrentService.Decrypt" -> "Decrypt"), and by key, for each of KeyId, SourceKeyId
   and DestinationKeyId present in the request (as sent: id, ARN or alias).
     GET  /_callvault/kms-calls         -> {"Decrypt": 3, "GenerateDataKey": 1, ...}
     GET  /_callvault/kms-calls/by-key  -> {"<key as sent>": {"Decrypt": 2, ...}, ...}
     POST /_callvault/kms-calls/reset   -> zeroes both ({} afterwards)
   moto's own ``POST /moto-api/reset`` keeps working and zeroes the counters too.
   A KMS request failed by a fault rule (patch 6, faults.py) is counted all the same:
   the counter sits in front of the fault injector and counts what clients sent.
"""

import io
import json
import threading
from collections import Counter, defaultdict


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
