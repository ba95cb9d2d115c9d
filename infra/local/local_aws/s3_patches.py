"""Patch 8: moto 5.2.5's S3 answers GetObjectRetention.

moto stores a version's Object Lock retention (PutObject's lock headers,
PutObjectRetention) and enforces it on DeleteObject, but has no
GetObjectRetention: ``GET /<key>?retention`` falls through to GetObject and
returns the object's bytes (the SDKs fail to parse them as XML).
Real S3: ``<Retention><Mode>GOVERNANCE|COMPLIANCE</Mode><RetainUntilDate>...
</RetainUntilDate></Retention>``, or 404 ``NoSuchObjectLockConfiguration``
for a version without retention, or 400 ``InvalidRequest`` ("Bucket is
missing Object Lock Configuration") in a bucket without Object Lock.
Patch: S3Response._key_response_get answers ``?retention`` from the key's
stored lock mode and date. When moto implements it, delete this patch and
its test in test_moto_launcher.py.
"""

from typing import Any

from moto.s3.responses import S3Response

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _error(status: int, code: str, message: str) -> tuple[int, dict, str]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>")
    return status, {"Content-Type": "application/xml"}, body


def _get_object_retention(self: S3Response) -> tuple[int, dict, str]:
    bucket = self.backend.get_bucket(self.bucket_name)
    if not bucket.object_lock_enabled:
        return _error(400, "InvalidRequest", "Bucket is missing Object Lock Configuration")
    key, _ = self._get_key()
    if not key.lock_mode or not key.lock_until:
        return _error(404, "NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock configuration")
    headers = {"Content-Type": "application/xml"}
    if key.version_id != "null":
        headers["x-amz-version-id"] = key.version_id
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Retention xmlns="{_NS}"><Mode>{key.lock_mode}</Mode>'
            f"<RetainUntilDate>{key.lock_until}</RetainUntilDate></Retention>")
    return 200, headers, body


def apply_patches() -> None:
    original = S3Response._key_response_get

    def _key_response_get(self: S3Response, query: dict[str, Any], key_name: str):
        if "retention" in query:
            self._set_action("KEY", "GET", query)
            return _get_object_retention(self)
        return original(self, query, key_name)

    S3Response._key_response_get = _key_response_get
