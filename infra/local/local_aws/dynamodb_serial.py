"""Patch 9: DynamoDB requests served one at a time, as WSGI middleware around moto's app.

Why: moto 5.2.5's TransactWriteItems is neither atomic nor isolated under
concurrent requests, and the server is threaded. To be able to roll back, it
deep-copies every table it touches before applying the items one by one, and on
a cancelled transaction (a condition that fails) it puts the copies back whole.
Two things follow when other requests run meanwhile:
- a write committed by another request between the copy and the rollback is
  undone with it: a usage counter loses an increment, a catalog row reverts
  (seen in CI: 150 recordings re-keyed, the new key's usage read 149);
- the deep copy iterates a table another request is changing, and fails with
  "dictionary changed size during iteration": HTTP 500, which the SDK retries.
Real DynamoDB isolates transactions from every other read and write (they are
serializable), and a cancelled transaction changes nothing.

9. Serialized DynamoDB (not a new behaviour, moto's isolation restored).
   Every request with an ``X-Amz-Target`` of ``DynamoDB_20120810.*`` runs under
   one lock, its response body produced before the lock is released. Requests
   to the other services are untouched and still run concurrently. A transaction
   conflict (TransactionConflictException) still never happens here: it is
   modelled on the catalog twin (``MemoryCatalog::contend``) and can be injected
   with a fault rule (patch 6), which sits outside this lock.
"""

import threading

TARGET_PREFIX = "DynamoDB_20120810."


class SerializedDynamoDb:
    """Runs DynamoDB requests one at a time; everything else passes straight through."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(TARGET_PREFIX):
            return self.app(environ, start_response)
        with self.lock:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
