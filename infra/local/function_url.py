"""IAM-authenticated Function URLs on the local AWS: what Lambda's
``AuthType: AWS_IAM`` URLs are in AWS, for the retention duty functions.

In AWS, a Function URL with ``AuthType: AWS_IAM`` checks each request's SigV4
signature (service ``lambda``), then hands the function the caller it
authenticated in ``requestContext.authorizer.iam``; the function trusts that
and nothing the body says. ``cargo lambda watch`` serves a function's URL too,
but checks no signature and names no caller. This stand-in sits in front of
``cargo lambda``'s invoke API and, for each request to
``http://127.0.0.1:PORT/<function>/`` (``--route <function>=<invoke API>/<binary>``:
cargo lambda invokes a function by its binary's name, and template.yaml runs
one binary as several functions, so each gets a watch of its own):

- checks the SigV4 signature: the algorithm, the credential scope (the region
  given here, service ``lambda``), the date within 15 minutes, and the
  signature itself, recomputed with the secret key of the access key the
  request names; a request that fails any of these is 403, as Lambda answers;
- names as the caller the principal ARN given for that access key
  (``--caller AKID:SECRET=ARN``, one per principal a test plays); an access
  key it does not know is 403;
- invokes the route's binary through its invoke API with a Function URL event
  (payload 2.0) whose ``requestContext.authorizer.iam`` names that caller,
  and answers with the function's ``statusCode``, headers and body (a
  function error is 502, as Lambda answers).

What it does not do is decide whether that caller may invoke that function:
that is IAM's (the duty's operators' policy in template.yaml), which the local
AWS does not enforce and tests/tests/iam.rs checks on the template instead.

It listens on 127.0.0.1 only. Usage:

    python3 function_url.py --port PORT --region us-east-1 \
        --route retention-hold=http://127.0.0.1:N/retention ... \
        --caller AKID:SECRET=arn:aws:sts::123456789012:assumed-role/legal/alice ...

and it prints ``function urls: http://127.0.0.1:PORT/<function>/`` once it
listens. The standard library only.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

# Headers a function URL never passes on as they came.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}
MAX_SKEW = datetime.timedelta(minutes=15)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_sha256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_uri(path: str) -> str:
    """SigV4's canonical path for every service but S3: each segment
    URI-encoded twice."""
    segments = path.split("/")
    once = [quote(unquote(s), safe="-_.~") for s in segments]
    return "/".join(quote(s, safe="-_.~") for s in once) or "/"


def canonical_query(query: str) -> str:
    pairs = []
    for part in filter(None, query.split("&")):
        k, _, v = part.partition("=")
        pairs.append((quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def parse_authorization(value: str):
    """``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``"""
    algorithm, _, rest = value.partition(" ")
    fields = {}
    for part in rest.split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    return algorithm, fields


class Urls:
    def __init__(self, routes: dict, region: str, account: str, callers: dict):
        self.routes = routes  # function -> (host, port, binary)
        self.region = region
        self.account = account
        self.callers = callers  # access key id -> (secret, arn)

    def authenticate(self, method, path, query, headers, body):
        """The caller's (access key, ARN), or why the request is refused."""
        auth = headers.get("authorization")
        if not auth:
            return None, "Missing Authentication Token"
        algorithm, fields = parse_authorization(auth)
        if algorithm != "AWS4-HMAC-SHA256":
            return None, f"unsupported algorithm {algorithm}"
        try:
            akid, date, region, service, terminal = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            signature = fields["Signature"]
        except (KeyError, ValueError):
            return None, "malformed Authorization header"
        if (region, service, terminal) != (self.region, "lambda", "aws4_request"):
            return None, f"credential scope {region}/{service}/{terminal} is not {self.region}/lambda/aws4_request"
        if akid not in self.callers:
            return None, "The security token included in the request is invalid."
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return None, "no valid X-Amz-Date"
        if abs(datetime.datetime.now(datetime.timezone.utc) - when) > MAX_SKEW or not amz_date.startswith(date):
            return None, "Signature expired or not yet valid"
        if "host" not in signed:
            return None, "the host header is not signed"
        payload_hash = sha256_hex(body)
        if headers.get("x-amz-content-sha256", payload_hash) != payload_hash:
            return None, "the signed payload hash is not the body's (an unsigned payload is not accepted)"
        canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
        canonical = "\n".join([method, canonical_uri(path), canonical_query(query), canonical_headers,
                               ";".join(signed), payload_hash])
        scope = f"{date}/{region}/lambda/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256_hex(canonical.encode())])
        secret, arn = self.callers[akid]
        key = hmac_sha256(("AWS4" + secret).encode(), date)
        for part in (region, "lambda", "aws4_request"):
            key = hmac_sha256(key, part)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return None, "The request signature we calculated does not match the signature you provided."
        return (akid, arn), None

    def event(self, function, method, path, query, headers, body, caller, source_ip):
        akid, arn = caller
        now = time.time()
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": self.account,
                "apiId": function,
                "authorizer": {"iam": {
                    "accessKey": akid,
                    "accountId": arn.split(":")[4],
                    "callerId": akid,
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": arn,
                    "userId": akid,
                }},
                "domainName": f"{function}.lambda-url.{self.region}.on.aws",
                "domainPrefix": function,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                         "userAgent": headers.get("user-agent", "")},
                "requestId": str(uuid.uuid4()),
                "routeKey": "$default",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": text,
            "isBase64Encoded": is_b64,
        }


def make_handler(urls: Urls):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("function url: " + fmt % args + "\n")

        def answer(self, status, body: bytes, headers=None):
            self.send_response(status)
            for k, v in (headers or {"content-type": "application/json"}).items():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = urlsplit(self.path)
            parts = target.path.split("/", 2)
            if len(parts) < 2 or not parts[1]:
                return self.answer(404, b'{"Message":"no function: /<function>/"}')
            function = parts[1]
            if function not in urls.routes:
                return self.answer(404, json.dumps({"Message": f"no function URL {function}"}).encode())
            host, port, binary = urls.routes[function]
            headers = {}
            for k, v in self.headers.items():
                k = k.lower()
                headers[k] = f"{headers[k]},{v}" if k in headers else v
            caller, refused = urls.authenticate(self.command, target.path, target.query, headers, body)
            if refused:
                return self.answer(403, json.dumps({"Message": refused}).encode())
            inner = "/" + (parts[2] if len(parts) > 2 else "")
            event = urls.event(function, self.command, inner, target.query,
                               {k: v for k, v in headers.items() if k != "authorization"}, body, caller,
                               self.client_address[0])
            conn = http.client.HTTPConnection(host, port, timeout=900)
            try:
                conn.request("POST", f"/2015-03-31/functions/{binary}/invocations", json.dumps(event),
                             {"content-type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
            finally:
                conn.close()
            try:
                result = json.loads(raw)
            except ValueError:
                result = None
            if resp.status != 200 or not isinstance(result, dict) or "errorType" in result or "statusCode" not in result:
                sys.stderr.write(f"function url: {function} failed: {raw[:500]!r}\n")
                return self.answer(502, b'{"Message":"Internal Server Error"}')
            out = result.get("body") or ""
            out = base64.b64decode(out) if result.get("isBase64Encoded") else out.encode()
            return self.answer(int(result["statusCode"]), out, result.get("headers") or {})

        do_POST = handle_any
        do_GET = handle_any
        do_PUT = handle_any
        do_DELETE = handle_any

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--route", action="append", required=True,
                   help="FUNCTION=http://127.0.0.1:N/BINARY: cargo lambda's invoke API and the binary it runs")
    p.add_argument("--region", required=True)
    p.add_argument("--account", default="123456789012")
    p.add_argument("--caller", action="append", default=[], help="AKID:SECRET=ARN")
    args = p.parse_args()
    callers = {}
    for c in args.caller:
        cred, _, arn = c.partition("=")
        akid, _, secret = cred.partition(":")
        if not (akid and secret and arn.startswith("arn:")):
            p.error(f"--caller {c!r} is not AKID:SECRET=ARN")
        callers[akid] = (secret, arn)
    routes = {}
    for r in args.route:
        name, _, target = r.partition("=")
        t = urlsplit(target)
        if not (name and t.scheme == "http" and t.hostname in ("127.0.0.1", "localhost") and t.port and t.path.strip("/")):
            p.error(f"--route {r!r} is not FUNCTION=http://127.0.0.1:N/BINARY")
        routes[name] = (t.hostname, t.port, t.path.strip("/"))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Urls(routes, args.region, args.account, callers)))
    print(f"function urls: http://127.0.0.1:{args.port}/<function>/ for {', '.join(sorted(routes))}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
