"""The supervisors' player in real headless Chromium (Debian's, driven by
Playwright), run by tests/tests/player.rs against the playback function
under cargo lambda watch, the local AWS and the local OpenID Connect issuer.

    player.py --url PLAYER_URL/ --user U --password P --refused PATH --out DIR

It does what a QA person does and checks what they see:
1. opens the player, signs in by filling the identity provider's login form
   (the whole authorization code flow runs; no token is injected);
2. sees only the types they may play, plays the newest recording, seeks to
   75% with the page's seek bar and checks the audio element plays from
   there; then seeks 19 times more;
3. opens a recording of a type they may not play (#play=PATH) and sees the
   refusal;
4. prints `WAITING disable-key` and waits for a line on stdin (the test
   disables the key and lets the cache time pass), then plays again and sees
   the key's message.
Along the way it records every request and response (URL, Range, status),
the URLs, cookies and storage, and takes screenshots into DIR. It writes
DIR/result.json, and exits non-zero at the first check that fails.
"""

import argparse
import json
import re
import sys
import time

from playwright.sync_api import sync_playwright

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--refused", required=True, help="<type>/<id> the user may not play")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    result = {"requests": [], "urls": [], "steps": [], "seeks": []}

    def step(name):
        result["steps"].append(name)
        print("STEP " + name, flush=True)

    def shot(page, name):
        path = f"{args.out}/{name}.png"
        page.screenshot(path=path, full_page=True)
        result.setdefault("screenshots", []).append(path)

    def check(ok, what):
        if not ok:
            result["failed"] = what
            json.dump(result, open(f"{args.out}/result.json", "w"), indent=2)
            print("FAILED " + what, flush=True)
            sys.exit(1)

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()

        def on_request(req):
            result["urls"].append(req.url)

        def on_response(resp):
            req = resp.request
            result["requests"].append({
                "url": req.url, "method": req.method, "range": req.headers.get("range"),
                "status": resp.status, "resource": req.resource_type,
                "content_range": resp.headers.get("content-range"),
            })

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("framenavigated", lambda frame: result["urls"].append(frame.url))

        # 1. Sign in through the identity provider's own form.
        page.goto(args.url)
        page.get_by_role("link", name=re.compile("Sign in")).click()
        page.get_by_label("Username").fill(args.user)
        page.get_by_label("Password").fill(args.password)
        shot(page, "1-identity-provider-login")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#app:not([hidden])", timeout=15000)
        page.wait_for_selector("#list tbody tr", timeout=15000)
        step("signed-in")
        who = page.locator("#who").inner_text()
        check(args.user in who, f"the page names the user: {who!r}")
        types = page.locator("#type option").all_inner_texts()
        result["types"] = types
        check(types == ["calls"], f"a QA user sees only calls: {types}")
        rows = page.locator("#list tbody tr").count()
        result["rows"] = rows
        shot(page, "2-signed-in-list")

        # 2. Play the newest, seek to 75% with the seek bar.
        page.locator("#list tbody tr").first.get_by_role("button").click()
        page.wait_for_function("() => { const a = document.getElementById('audio'); return a.readyState >= 1 && isFinite(a.duration) && a.duration > 0; }", timeout=15000)
        page.wait_for_function("() => !document.getElementById('audio').paused", timeout=15000)
        duration = page.evaluate("document.getElementById('audio').duration")
        result["duration"] = duration
        before_seek = len(result["requests"])
        page.locator("#seek").fill("750")
        page.wait_for_function("() => { const a = document.getElementById('audio'); return !a.seeking && a.currentTime >= 0.75 * a.duration - 0.25; }", timeout=15000)
        at = page.evaluate("document.getElementById('audio').currentTime")
        time.sleep(1.5)
        later = page.evaluate("({t: document.getElementById('audio').currentTime, paused: document.getElementById('audio').paused, err: document.getElementById('audio').error && document.getElementById('audio').error.message})")
        result["seek_75"] = {"at": at, "later": later, "duration": duration, "first_request": before_seek}
        check(at >= 0.75 * duration - 0.25, f"after the seek the audio is at 75%: {at} of {duration}")
        check(not later["paused"] and later["t"] > at, f"and it plays on from there: {later} after {at}")
        shot(page, "3-playing-from-75-percent")
        step("seeked-75")

        # 19 more seeks: the cached key opens every one of them.
        for i in range(19):
            target = str(50 + (i * 137) % 900)
            page.locator("#seek").fill(target)
            page.wait_for_function("() => !document.getElementById('audio').seeking", timeout=15000)
            result["seeks"].append(page.evaluate("document.getElementById('audio').currentTime"))
        time.sleep(0.5)
        err = page.evaluate("document.getElementById('audio').error && document.getElementById('audio').error.message")
        check(err is None, f"no media error after 20 seeks: {err}")
        check(page.locator("#message").is_hidden(), "no refusal shown while playing")
        step("seeked-20")

        # 3. A type the user may not play.
        page.evaluate("document.getElementById('audio').pause()")
        page.goto(args.url + "#play=" + args.refused)
        page.wait_for_selector("#message:not([hidden])", timeout=15000)
        refusal = page.locator("#message").inner_text()
        result["refusal"] = refusal
        check("not permitted" in refusal, f"the refusal is clear: {refusal!r}")
        shot(page, "4-not-permitted")
        step("refused")

        # 4. The key disabled, the cache time passed: the key's message.
        print("WAITING disable-key", flush=True)
        line = sys.stdin.readline()
        check(line.strip() == "disabled", f"the test disabled the key: {line!r}")
        page.goto(args.url)
        page.wait_for_selector("#list tbody tr", timeout=15000)
        page.locator("#list tbody tr").first.get_by_role("button").click()
        page.wait_for_selector("#message:not([hidden])", timeout=15000)
        key_message = page.locator("#message").inner_text()
        result["key_message"] = key_message
        check("administrator of KMS key arn:aws:kms:" in key_message, f"the key's message: {key_message!r}")
        shot(page, "5-key-disabled")
        step("key-message")

        # Nothing of a token anywhere the page or its URLs can reach.
        result["local_storage"] = page.evaluate("Object.keys(localStorage).length")
        result["session_storage"] = page.evaluate("Object.keys(sessionStorage).length")
        result["document_cookie"] = page.evaluate("document.cookie")
        result["cookies"] = [{k: c[k] for k in ("name", "httpOnly", "sameSite", "path", "secure")} for c in context.cookies()]
        check(result["local_storage"] == 0 and result["session_storage"] == 0, "nothing in web storage")
        check(result["document_cookie"] == "", "no cookie a script can read")
        bad = [u for u in result["urls"] if JWT.search(u) or "id_token" in u or "access_token" in u]
        check(not bad, f"no token in any URL: {bad}")

        # On a phone: the same page, narrow.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
        phone_page = phone.new_page()
        for c in context.cookies():
            phone.add_cookies([c])
        phone_page.goto(args.url)
        phone_page.wait_for_selector("#list tbody tr", timeout=15000)
        shot(phone_page, "6-phone-list")
        browser.close()

    json.dump(result, open(f"{args.out}/result.json", "w"), indent=2)
    step("done")


if __name__ == "__main__":
    main()
