"""A small OpenID Connect issuer on 127.0.0.1, for the demo and the tests.

    oidc_issuer.py --users FILE --redirect-uri URI [--port N] [--exit-on-stdin-eof]

It stands in for the company's identity provider (Cognito, Entra ID, Okta,
Google Workspace) the way the player uses one:

- discovery at /.well-known/openid-configuration, and a JWKS at /jwks with an
  RSA (RS256) and an EC (ES256) key generated at start, never written down;
- /authorize: the authorization code flow with PKCE (S256 required), a login
  form with labelled username and password fields, users and their groups
  from FILE; the code is bound to the client, the redirect URI, the
  challenge and the nonce, lives 60 s and is used once;
- /token: the code exchanged by the client authenticated with its secret
  (HTTP Basic or client_secret_post), the verifier checked, an ID token
  (RS256) with sub, preferred_username, name, email, groups and nonce; and
  the client-credentials grant for tools (a token whose groups FILE gives the
  client).

FILE is JSON: {"clients": {"<id>": {"secret": "...", "groups": [...]}},
"users": [{"username", "password", "name", "email", "groups": [...]}]}; the
first client is the player's (the one the browser signs in to). It prints
`READY http://127.0.0.1:<port>` once it accepts connections; the issuer is
that URL. Nothing here is for production: it exists so the whole sign-in
runs on one machine with no account anywhere.
"""

import argparse
import base64
import hashlib
import html
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

CODE_SECONDS = 60


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")


class Keys:
    """The signing keys, made at start."""

    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_kid = "rsa-" + secrets.token_hex(4)
        self.ec_kid = "ec-" + secrets.token_hex(4)

    def jwks(self):
        r = self.rsa.public_key().public_numbers()
        e = self.ec.public_key().public_numbers()
        return {"keys": [
            {"kty": "RSA", "kid": self.rsa_kid, "use": "sig", "alg": "RS256", "n": b64url(uint(r.n)), "e": b64url(uint(r.e))},
            {"kty": "EC", "kid": self.ec_kid, "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": b64url(e.x.to_bytes(32, "big")), "y": b64url(e.y.to_bytes(32, "big"))},
        ]}

    def sign(self, claims, alg="RS256"):
        kid = self.rsa_kid if alg == "RS256" else self.ec_kid
        header = {"alg": alg, "typ": "JWT", "kid": kid}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        if alg == "RS256":
            sig = self.rsa.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.ec.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input.decode() + "." + b64url(sig)


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - local identity provider</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #eef1f5; display: grid; place-items: center; min-height: 100vh; margin: 0; }}
form {{ background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 2px 12px #0002; display: grid; gap: .75rem; min-width: 18rem; }}
label {{ display: grid; gap: .25rem; font-size: .9rem; color: #444; }}
input {{ font: inherit; padding: .5rem; border: 1px solid #bbb; border-radius: 4px; }}
button {{ font: inherit; padding: .6rem; background: #3b4cca; color: #fff; border: 0; border-radius: 4px; }}
.error {{ color: #a3261b; }}
</style></head><body>
<form method="post" action="authorize">
<h1>Acme sign-in</h1>
<p>Local identity provider for callvault's demo and tests.</p>
{error}
<label>Username <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
{hidden}
<button type="submit">Sign in</button>
</form></body></html>"""


class Issuer:
    def __init__(self, config, redirect_uris, token_seconds):
        self.clients = config["clients"]
        self.player = next(iter(self.clients))
        self.users = {u["username"]: u for u in config["users"]}
        self.redirect_uris = set(redirect_uris)
        self.token_seconds = token_seconds
        self.keys = Keys()
        self.codes = {}
        self.lock = threading.Lock()
        self.url = None

    def discovery(self):
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "subject_types_supported": ["public"],
        }

    def claims(self, sub, audience, extra):
        now = int(time.time())
        claims = {"iss": self.url, "sub": sub, "aud": audience, "iat": now, "nbf": now,
                  "exp": now + self.token_seconds, "jti": secrets.token_urlsafe(12)}
        claims.update(extra)
        return claims


class Handler(BaseHTTPRequestHandler):
    issuer: Issuer = None

    def log_message(self, fmt, *args):
        sys.stderr.write("oidc_issuer: " + (fmt % args) + "\n")

    def reply(self, status, body, content_type="application/json", headers=()):
        data = body if isinstance(body, bytes) else (json.dumps(body) if content_type == "application/json" else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, description):
        self.reply(status, {"error": code, "error_description": description})

    def form(self):
        length = int(self.headers.get("Content-Length") or 0)
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == "/.well-known/openid-configuration":
            return self.reply(200, self.issuer.discovery())
        if url.path == "/jwks":
            return self.reply(200, self.issuer.keys.jwks())
        if url.path == "/authorize":
            problem = self.check_authorize(query)
            if problem:
                return self.reply(400, f"<!doctype html><title>Bad request</title><p>{html.escape(problem)}</p>", "text/html; charset=utf-8")
            return self.login_page(query, "")
        self.error(404, "not_found", url.path)

    def check_authorize(self, q):
        if q.get("client_id") != self.issuer.player:
            return "unknown client_id"
        if q.get("redirect_uri") not in self.issuer.redirect_uris:
            return "redirect_uri is not registered for this client"
        if q.get("response_type") != "code":
            return "response_type must be code"
        if q.get("code_challenge_method") != "S256" or len(q.get("code_challenge", "")) != 43:
            return "PKCE with S256 is required"
        if "openid" not in q.get("scope", "").split():
            return "scope must include openid"
        return None

    def login_page(self, q, error):
        keep = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method")
        hidden = "\n".join(f'<input type="hidden" name="{k}" value="{html.escape(q.get(k, ""))}">' for k in keep)
        err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        self.reply(200 if not error else 401, LOGIN_PAGE.format(error=err, hidden=hidden), "text/html; charset=utf-8")

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/authorize":
            return self.sign_in(self.form())
        if url.path == "/token":
            return self.token(self.form())
        self.error(404, "not_found", url.path)

    def sign_in(self, f):
        problem = self.check_authorize(f)
        if problem:
            return self.reply(400, html.escape(problem), "text/plain")
        user = self.issuer.users.get(f.get("username", ""))
        if not user or not secrets.compare_digest(user["password"], f.get("password", "")):
            return self.login_page(f, "Unknown username or wrong password.")
        code = secrets.token_urlsafe(24)
        with self.issuer.lock:
            self.issuer.codes[code] = {"user": user["username"], "client": f["client_id"], "redirect_uri": f["redirect_uri"],
                                       "challenge": f["code_challenge"], "nonce": f.get("nonce"), "until": time.time() + CODE_SECONDS}
        target = f["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": f.get("state", "")})
        self.reply(302, b"", "text/plain", [("Location", target)])

    def client(self, f):
        """The authenticated client, from HTTP Basic or the form."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            cid, secret = urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret)
        else:
            cid, secret = f.get("client_id", ""), f.get("client_secret", "")
        c = self.issuer.clients.get(cid)
        if c and secrets.compare_digest(c["secret"], secret):
            return cid
        return None

    def token(self, f):
        cid = self.client(f)
        if not cid:
            return self.error(401, "invalid_client", "client authentication failed")
        grant = f.get("grant_type")
        if grant == "client_credentials":
            groups = self.issuer.clients[cid].get("groups", [])
            access = self.issuer.keys.sign(self.issuer.claims(cid, cid, {"client_id": cid, "groups": groups}))
            return self.reply(200, {"access_token": access, "token_type": "Bearer", "expires_in": self.issuer.token_seconds})
        if grant != "authorization_code":
            return self.error(400, "unsupported_grant_type", str(grant))
        with self.issuer.lock:
            code = self.issuer.codes.pop(f.get("code", ""), None)
        if not code or code["until"] < time.time() or code["client"] != cid:
            return self.error(400, "invalid_grant", "unknown, used or expired code")
        if f.get("redirect_uri") != code["redirect_uri"]:
            return self.error(400, "invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = f.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != code["challenge"]:
            return self.error(400, "invalid_grant", "the PKCE verifier does not match the challenge")
        user = self.issuer.users[code["user"]]
        profile = {"preferred_username": user["username"], "name": user.get("name", user["username"]),
                   "email": user.get("email"), "groups": user.get("groups", [])}
        if code["nonce"]:
            profile["nonce"] = code["nonce"]
        id_token = self.issuer.keys.sign(self.issuer.claims(user["username"], cid, profile))
        access = self.issuer.keys.sign(self.issuer.claims(user["username"], cid, {"groups": user.get("groups", [])}))
        self.reply(200, {"id_token": id_token, "access_token": access, "token_type": "Bearer",
                         "expires_in": self.issuer.token_seconds})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", required=True)
    ap.add_argument("--redirect-uri", action="append", default=[], help="a registered redirect URI of the player client")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token-seconds", type=int, default=3600)
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    args = ap.parse_args()
    with open(args.users) as f:
        config = json.load(f)
    issuer = Issuer(config, args.redirect_uri, args.token_seconds)
    Handler.issuer = issuer
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
    if args.exit_on_stdin_eof:
        def watch():
            sys.stdin.read()
            server.shutdown()
        threading.Thread(target=watch, daemon=True).start()
    print(f"READY {issuer.url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
