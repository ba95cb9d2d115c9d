"""Patch 6: fault injection, as WSGI middleware in front of moto's app.

Why: callvault's error paths (an S3 UploadPart, a DynamoDB TransactWriteItems or an
S3 DeleteObject that fails) can only be tested if a chosen request fails on demand,
which moto cannot do.

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

import json
import threading
from http import HTTPStatus
from urllib.parse import urlsplit
from xml.sax.saxutils import escape


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
        elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(rule.code)}</Code>"
                f"<Message>{escape(rule.message)}</Message></Error>"
                "<RequestId>callvault-fault</RequestId></ErrorResponse>"
            ).encode()
            headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", "callvault-fault")]
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
