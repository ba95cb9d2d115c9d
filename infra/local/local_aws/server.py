"""Run moto (5.2.5) as a local AWS KMS on 127.0.0.1, patched to behave like real KMS.

Usage: python moto_launcher.py [--port N] [--exit-on-stdin-eof]
       (N = 0, the default, picks a free port)

Binds 127.0.0.1 only. Once the server accepts connections it prints exactly one line,
``READY http://127.0.0.1:<port>``, on stdout, then serves until SIGTERM or SIGINT
(or, with --exit-on-stdin-eof, until standard input closes).
Requests are not logged; only server errors (5xx) get a short line on stderr.

Why a module of its own: it wires the pieces together, the KMS patches
(kms_patches, 1-4 and 7; s3_patches, 8) and the three middlewares (call_counter, 5, outermost;
faults, 6; dynamodb_serial, 9, innermost) around moto's server app. The first line of this docstring is the --help description.
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from .call_counter import CallCounter
from .dynamodb_serial import SerializedDynamoDb
from .faults import FaultInjector
from .kms_patches import apply_patches
from .s3_patches import apply_patches as apply_s3_patches


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
    apply_s3_patches()
    # The counter is outermost: it counts KMS requests that a fault rule then fails.
    # DynamoDB is serialized innermost: a request a fault rule fails never waits for the lock.
    moto_app = DomainDispatcherApplication(create_backend_app)
    app = CallCounter(FaultInjector(SerializedDynamoDb(moto_app)))
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
