"""The player's front on the local AWS: what the CloudFront distribution is in AWS.

In AWS the supervisors reach the player at the distribution's root over https,
and CloudFront forwards each request to the playback function's URL. Locally the
function's URL is cargo lambda's (http://127.0.0.1:N/lambda-url/playback): not at
the root of its origin, and not a secure context, so the player's ``__Host-``
cookies (Secure, Path=/) would not be kept there. This front serves the player
at the root of ``http://localhost:PORT``, which every browser treats as a secure
context, and, like the distribution:

- forwards GET and HEAD only (anything else is 403, as CloudFront answers a
  method its behaviour does not allow);
- with ``--template template.yaml``, forwards only the viewer headers and
  cookies the stack's origin request policy (``PlayerOriginRequests``) lists,
  as CloudFront does (without it, every viewer header but Host and the
  hop-by-hop ones);
- sets ``CloudFront-Viewer-Address`` to the viewer's address and port, replacing
  any the viewer sent (the origin request policy lists it), and, when
  ``CALLVAULT_FRONT_SECRET`` is set (the value of the stack's player-front
  secret), ``X-Callvault-Front`` to it, as the distribution's origin custom
  header does: the function trusts the viewer's address only beside it;
- streams the function's answer back as it comes, caching nothing.

It listens on 127.0.0.1 only. Usage:

    python3 player_front.py --port PORT --origin http://127.0.0.1:N/lambda-url/playback \
        [--template template.yaml]

and it prints ``player front: http://localhost:PORT/ -> ORIGIN`` once it listens.
The standard library only, but for ``--template`` (PyYAML, in the local AWS's
virtual environment).
"""

import argparse
import http.client
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
VIEWER_ADDRESS = "cloudfront-viewer-address"
FRONT_HEADER = "x-callvault-front"


def origin_request_policy(path):
    """The headers (lower case) and cookies template.yaml's PlayerOriginRequests forwards."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short tags (!Sub, !Ref...) are not needed here.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    with open(path) as f:
        doc = yaml.load(f, Loader=Loader)
    config = doc["Resources"]["PlayerOriginRequests"]["Properties"]["OriginRequestPolicyConfig"]
    if config["HeadersConfig"]["HeaderBehavior"] != "whitelist" or config["CookiesConfig"]["CookieBehavior"] != "whitelist":
        sys.exit("player front: PlayerOriginRequests is not a whitelist of headers and cookies")
    return {h.lower() for h in config["HeadersConfig"]["Headers"]}, set(config["CookiesConfig"]["Cookies"])


def only_cookies(header, allowed):
    """A Cookie header with only the allowed cookies, or None."""
    kept = [c.strip() for c in header.split(";") if c.strip().split("=", 1)[0] in allowed]
    return "; ".join(kept) or None


def handler_for(origin, secret, policy):
    parts = urlsplit(origin)
    host, port, prefix = parts.hostname, parts.port or 80, parts.path.rstrip("/")

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("player front: " + (fmt % args) + "\n")

        def do_GET(self):
            self.forward()

        def do_HEAD(self):
            self.forward()

        def refuse(self):
            body = b"method not allowed by the player's front\n"
            self.send_response(403)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = refuse

        def forward(self):
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP_BY_HOP and k.lower() not in (VIEWER_ADDRESS, FRONT_HEADER)}
            if policy is not None:
                allowed_headers, allowed_cookies = policy
                cookie = only_cookies(self.headers.get("Cookie", ""), allowed_cookies)
                headers = {k: v for k, v in headers.items() if k.lower() in allowed_headers}
                if cookie:
                    headers["Cookie"] = cookie
            headers["CloudFront-Viewer-Address"] = f"{self.client_address[0]}:{self.client_address[1]}"
            if secret:
                headers["X-Callvault-Front"] = secret
            conn = http.client.HTTPConnection(host, port, timeout=300)
            try:
                conn.request(self.command, prefix + self.path, headers=headers)
                answer = conn.getresponse()
            except OSError as e:
                body = f"the playback function did not answer: {e}\n".encode()
                self.send_response(502)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()
                return
            self.send_response(answer.status, answer.reason)
            length = answer.getheader("Content-Length")
            for k, v in answer.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            if length is not None:
                self.send_header("Content-Length", length)
            else:
                # A streamed answer of unknown length ends when the connection does.
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            try:
                if self.command != "HEAD":
                    while True:
                        chunk = answer.read1(64 * 1024)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                # The viewer went away (a seek cancels the request before it).
                self.close_connection = True
            finally:
                conn.close()

    return Front


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--origin", required=True, help="the playback function's URL")
    ap.add_argument("--template", help="template.yaml: forward only what PlayerOriginRequests lists")
    args = ap.parse_args()
    policy = origin_request_policy(args.template) if args.template else None
    secret = os.environ.get("CALLVAULT_FRONT_SECRET", "").strip()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(args.origin, secret, policy))
    server.daemon_threads = True
    print(f"player front: http://localhost:{server.server_address[1]}/ -> {args.origin}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
