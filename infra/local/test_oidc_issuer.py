"""The local OpenID Connect issuer (oidc_issuer.py) behaves as the player
needs a real one to: discovery and keys, PKCE required, a code used once and
only by its client with its verifier, tokens that verify with the JWKS."""

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
REDIRECT = "http://127.0.0.1:9/auth/callback"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class IssuerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "oidc_issuer.py"), "--users", os.path.join(HERE, "oidc-users.json"),
             "--redirect-uri", REDIRECT, "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = cls.proc.stdout.readline()
        assert line.startswith("READY "), f"the issuer did not start: {line!r}"
        cls.url = line.split()[1]

    @classmethod
    def tearDownClass(cls):
        cls.proc.stdin.close()
        cls.proc.wait(timeout=10)

    def call(self, path, data=None, headers=None):
        req = urllib.request.Request(self.url + path, data=urllib.parse.urlencode(data).encode() if data else None,
                                     headers=headers or {})
        try:
            with OPENER.open(req) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def authorize(self, user="anna.qa", password="anna-local", challenge=None):
        verifier = secrets.token_urlsafe(32)
        params = {"client_id": "callvault-player", "redirect_uri": REDIRECT, "response_type": "code",
                  "scope": "openid email", "state": "s1", "nonce": "n1",
                  "code_challenge": challenge or b64url(hashlib.sha256(verifier.encode()).digest()),
                  "code_challenge_method": "S256"}
        status, _, page = self.call("/authorize?" + urllib.parse.urlencode(params))
        self.assertEqual(status, 200)
        self.assertIn(b'<label>Username', page)
        status, headers, _ = self.call("/authorize", dict(params, username=user, password=password))
        return status, headers, verifier

    def exchange(self, code, verifier, secret="local-player-secret-not-for-production"):
        basic = base64.b64encode(f"callvault-player:{secret}".encode()).decode()
        return self.call("/token", {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                    "code_verifier": verifier}, {"Authorization": "Basic " + basic})

    def verify(self, token):
        status, _, body = self.call("/jwks")
        keys = {k["kid"]: k for k in json.loads(body)["keys"]}
        header, claims, sig = token.split(".")
        h = json.loads(unb64(header))
        self.assertEqual(h["alg"], "RS256")
        k = keys[h["kid"]]
        public = rsa.RSAPublicNumbers(int.from_bytes(unb64(k["e"]), "big"), int.from_bytes(unb64(k["n"]), "big")).public_key()
        public.verify(unb64(sig), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return json.loads(unb64(claims))

    def test_discovery_names_this_issuer_and_its_endpoints(self):
        status, _, body = self.call("/.well-known/openid-configuration")
        doc = json.loads(body)
        self.assertEqual((status, doc["issuer"]), (200, self.url))
        self.assertEqual(doc["code_challenge_methods_supported"], ["S256"])

    def test_the_code_flow_gives_an_id_token_once_and_only_with_the_verifier(self):
        status, headers, verifier = self.authorize()
        self.assertEqual(status, 302)
        target = urllib.parse.urlparse(headers["Location"])
        q = dict(urllib.parse.parse_qsl(target.query))
        self.assertEqual((target.path, q["state"]), ("/auth/callback", "s1"))
        self.assertEqual(self.exchange(q["code"], "wrong-verifier")[0], 400)
        status, _, body = self.exchange(q["code"], verifier)
        self.assertEqual(status, 400, "a failed exchange spends the code")
        status, headers, verifier = self.authorize()
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(headers["Location"]).query))["code"]
        self.assertEqual(self.exchange(code, verifier, secret="wrong")[0], 401)
        status, _, body = self.exchange(code, verifier)
        self.assertEqual(status, 200, body)
        claims = self.verify(json.loads(body)["id_token"])
        self.assertEqual((claims["iss"], claims["aud"], claims["sub"], claims["nonce"]), (self.url, "callvault-player", "anna.qa", "n1"))
        self.assertEqual(claims["groups"], ["qa", "staff"])
        self.assertEqual(self.exchange(code, verifier)[0], 400, "a code is used once")

    def test_a_wrong_password_or_a_missing_pkce_challenge_is_refused(self):
        status, _, _ = self.authorize(password="nope")
        self.assertEqual(status, 401)
        status, _, _ = self.call("/authorize?" + urllib.parse.urlencode(
            {"client_id": "callvault-player", "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid"}))
        self.assertEqual(status, 400)
        status, _, _ = self.call("/authorize?" + urllib.parse.urlencode(
            {"client_id": "callvault-player", "redirect_uri": "https://evil.example/cb", "response_type": "code",
             "scope": "openid", "code_challenge": "x" * 43, "code_challenge_method": "S256"}))
        self.assertEqual(status, 400, "an unregistered redirect URI")

    def test_tools_get_client_credentials_tokens_with_their_groups(self):
        status, _, body = self.call("/token", {"grant_type": "client_credentials", "client_id": "callvault-tools",
                                               "client_secret": "local-tools-secret-not-for-production"})
        self.assertEqual(status, 200, body)
        claims = self.verify(json.loads(body)["access_token"])
        self.assertEqual((claims["sub"], claims["aud"], claims["groups"]), ("callvault-tools", "callvault-tools", ["supervisors"]))


if __name__ == "__main__":
    unittest.main()
