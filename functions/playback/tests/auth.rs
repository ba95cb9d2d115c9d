//! Who may play what: every request is answered only for a verified
//! identity (a bearer token of the company's identity provider, or the
//! session cookie a browser sign-in set), and only for the recordings its
//! groups are granted. A refusal costs no catalog read and no KMS call.

mod common;

use std::sync::Arc;

use common::*;
use playback::auth::b64url;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn every_token_that_does_not_verify_is_401_with_no_catalog_read_and_no_kms_call() {
    let rig = Rig::new();
    rig.record("calls/a.wav", b"RIFF....WAVE", "audio/wav").await;
    let kept = Arc::new(Kept::default());
    let h = rig.handler_with(kept.clone());
    let now = playback::auth::now_secs();
    let good = IDP.claims("sam.supervisor", &["supervisors"]);
    let with = |changes: Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let rs256 = |claims: &Value| IDP.token(claims);
    // HS256 keyed with the RSA public key: the classic algorithm confusion.
    let hs256 = {
        let header = json!({ "alg": "HS256", "typ": "JWT", "kid": IDP.rsa_kid });
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(good.to_string().as_bytes()));
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &IDP.rsa_modulus());
        format!("{input}.{}", b64url(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref()))
    };
    let tampered = {
        let token = rs256(&with(json!({ "groups": ["qa"] })));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64url(with(json!({ "groups": ["supervisors"] })).to_string().as_bytes());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("wrong issuer", Some(rs256(&with(json!({ "iss": "https://login.example.com/other" }))))),
        ("wrong audience", Some(rs256(&with(json!({ "aud": "someone-else" }))))),
        ("expired", Some(rs256(&with(json!({ "exp": now - 3600, "iat": now - 7200, "nbf": now - 7200 }))))),
        ("not yet valid", Some(rs256(&with(json!({ "nbf": now + 3600 }))))),
        ("alg none", Some(IDP.sign(&json!({ "alg": "none", "typ": "JWT" }), &good))),
        ("HS256 with the public key", Some(hs256)),
        ("unknown kid", Some(IDP.sign(&json!({ "alg": "RS256", "kid": "rotated-away" }), &good))),
        ("tampered signature", Some(tampered)),
        ("not a JWT", Some("not-a-token".into())),
        // The sample event's IAM request context names jane.doe: a direct
        // invoker writes that himself, so without a token it is no one.
        ("forged requestContext, no token", None),
    ];
    for (case, token) in &cases {
        trap_catalog(&rig);
        let headers: Vec<(&str, String)> = token.iter().map(|t| ("authorization", bearer(t))).collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for path in ["/recordings/calls/a.wav", "/recordings/calls/a.wav/info", "/api/recordings?type=calls", "/api/me"]
        {
            let (status, head, text) = answer(&h, request("GET", path, &headers)).await;
            let json: Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(status, 401, "{case} {path}: {json}");
            let code = if token.is_some() { "token_invalid" } else { "not_signed_in" };
            assert_eq!(json["error"], code, "{case}");
            assert!(head["www-authenticate"].to_str().unwrap().starts_with("Bearer realm=\"callvault\""), "{case}");
        }
        assert_eq!(rig.decrypts(), 0, "{case}: no KMS call");
        // The trap is still set: nothing read the catalog.
        assert!(rig_catalog_trap_sprung(&rig).await, "{case}: the catalog was read");
    }
    // The audit: who carried the request (the IAM caller) is kept, but no
    // person is named.
    let records = kept.0.lock().unwrap().1.clone();
    assert!(records.iter().all(|r| r.subject.is_none() && r.auth == "none" && r.status == 401));
    assert!(
        records
            .iter()
            .all(|r| r.principal.as_deref()
                == Some("arn:aws:sts::111122223333:assumed-role/CallvaultSupervisor/jane.doe"))
    );

    // Behind CloudFront or called with SigV4, `Authorization` is the
    // transport's signature: the token travels in x-callvault-authorization.
    let sigv4 =
        "AWS4-HMAC-SHA256 Credential=ASIA.../20261129/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=abc";
    let (status, _, _) = answer(
        &h,
        request(
            "GET",
            "/recordings/calls/a.wav",
            &[("authorization", sigv4), ("x-callvault-authorization", &bearer(&rs256(&good)))],
        ),
    )
    .await;
    assert_eq!(status, 200, "a token beside a SigV4 signature");
    let (status, _, _) = answer(&h, request("GET", "/recordings/calls/a.wav", &[("authorization", sigv4)])).await;
    assert_eq!(status, 401, "a signature alone is no one");
    let (status, _, _) =
        answer(&h, request("GET", "/recordings/calls/a.wav", &[("x-callvault-authorization", "Basic abc")])).await;
    assert_eq!(status, 401);
    // The same recording with a good token, RS256 and ES256: played.
    let es256 = IDP.sign(&json!({ "alg": "ES256", "typ": "JWT", "kid": IDP.ec_kid }), &good);
    for token in [rs256(&good), es256] {
        let (status, _, text) =
            answer(&h, request("GET", "/recordings/calls/a.wav", &[("authorization", &bearer(&token))])).await;
        assert_eq!((status, text.as_slice()), (200, &b"RIFF....WAVE"[..]));
    }
    // A tool's access token without `aud` (Cognito's client-credentials
    // tokens): its `client_id` must be an accepted audience.
    let mut tool = with(json!({ "client_id": "tools", "groups": ["supervisors"] }));
    tool.as_object_mut().unwrap().remove("aud");
    let (status, _, _) =
        answer(&h, request("GET", "/recordings/calls/a.wav", &[("authorization", &bearer(&rs256(&tool)))])).await;
    assert_eq!(status, 200, "client_id tools is an accepted audience");
    tool["client_id"] = json!("someone-else");
    let (status, _, _) =
        answer(&h, request("GET", "/recordings/calls/a.wav", &[("authorization", &bearer(&rs256(&tool)))])).await;
    assert_eq!(status, 401);
    // ES256 claimed for the RSA key: refused (the JWK says RS256).
    let confused = IDP.sign(&json!({ "alg": "ES256", "kid": IDP.rsa_kid }), &good);
    let (status, _, _) =
        answer(&h, request("GET", "/recordings/calls/a.wav", &[("authorization", &bearer(&confused))])).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_unknown_kids_is_not_a_flood_of_jwks_fetches() {
    let rig = Rig::new();
    rig.record("calls/a.wav", b"abc", "audio/wav").await;
    // An issuer of its own: its fetch counter counts this test's fetches only.
    let idp = playback::auth::issuer::TestIssuer::new(ISSUER, CLIENT_ID);
    let h = rig.handler_of(Arc::new(playback::StdoutAudit), auth_of(idp.clone()));
    let good = idp.claims("sam", &["supervisors"]);
    let (status, _, _) =
        answer(&h, request("GET", "/recordings/calls/a.wav", &[("authorization", &bearer(&idp.token(&good)))])).await;
    assert_eq!(status, 200);
    let fetched = idp.jwks_fetches.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(fetched, 1, "the first token fetched the JWKS");
    for n in 0..20 {
        let forged = idp.sign(&json!({ "alg": "RS256", "kid": format!("forged-{n}") }), &good);
        let (status, _, _) =
            answer(&h, request("GET", "/recordings/calls/a.wav", &[("authorization", &bearer(&forged))])).await;
        assert_eq!(status, 401);
    }
    let after = idp.jwks_fetches.load(std::sync::atomic::Ordering::Relaxed);
    assert!(after - fetched <= 1, "20 unknown kids fetched the JWKS {} times", after - fetched);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_plays_and_lists_only_what_their_groups_grant_and_the_audit_names_them() {
    let rig = Rig::new();
    for (key, day) in [("calls/emea/1.wav", 3), ("calls/apac/2.wav", 2), ("calls/emea/3.wav", 1), ("screens/s.webm", 1)]
    {
        rig.record(key, b"RIFF....WAVE", "audio/wav").await;
        let (recording_type, recording_id) = key.split_once('/').unwrap();
        let id =
            vault::recording::RecordingId { recording_type: recording_type.into(), recording_id: recording_id.into() };
        rig.catalog.edit(&id, |e| e.encrypted_at = format!("2026-11-0{day}T10:00:00Z"));
    }
    let kept = Arc::new(Kept::default());
    let h = rig.handler_with(kept.clone());
    let token = |sub: &str, groups: &[&str]| bearer(&IDP.token(&IDP.claims(sub, groups)));
    let qa = token("anna.qa", &["qa", "staff"]);
    let emea = token("eve.emea", &["emea-qa"]);
    let nobody = token("nick.none", &["staff"]);
    for (who, path, want) in [
        (&qa, "/recordings/calls/emea/1.wav", 200),
        (&qa, "/recordings/calls/apac/2.wav", 200),
        (&qa, "/recordings/screens/s.webm", 403),
        (&qa, "/recordings/screens/s.webm/info", 403),
        (&emea, "/recordings/calls/emea/1.wav", 200),
        (&emea, "/recordings/calls/apac/2.wav", 403),
        (&nobody, "/recordings/calls/emea/1.wav", 403),
    ] {
        let decrypts = rig.decrypts();
        let (status, _, text) = answer(&h, request("GET", path, &[("authorization", who)])).await;
        assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&text));
        if want == 403 {
            let json: Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(json["error"], "not_permitted");
            assert!(json["message"].as_str().unwrap().starts_with("You are not permitted to play "), "{json}");
            assert_eq!(rig.decrypts(), decrypts, "a refusal calls no KMS");
        }
    }
    let records = kept.0.lock().unwrap().1.clone();
    let played = records.iter().find(|r| r.status == 200 && r.subject.as_deref() == Some("anna.qa")).unwrap();
    assert_eq!(played.groups, ["qa"], "the group that granted it, not every group");
    assert_eq!((played.username.as_deref(), played.email.as_deref()), (Some("anna.qa"), Some("anna.qa@example.com")));
    assert_eq!(played.auth, "bearer");
    assert!(played.token_id.is_some());
    let refused = records.iter().find(|r| r.status == 403 && r.subject.as_deref() == Some("anna.qa")).unwrap();
    assert_eq!(refused.code, Some("not_permitted"));

    // The list: what the person may play of a type, never another type.
    let (status, _, text) = answer(&h, request("GET", "/api/recordings?type=calls", &[("authorization", &emea)])).await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_slice(&text).unwrap();
    let ids: Vec<&str> =
        list["recordings"].as_array().unwrap().iter().map(|r| r["recording_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["emea/1.wav", "emea/3.wav"], "a prefix grant lists its prefix only");
    // A page of one: its cursor says nothing of the rows the grant hides.
    let (_, _, text) =
        answer(&h, request("GET", "/api/recordings?type=calls&limit=1", &[("authorization", &emea)])).await;
    let page: Value = serde_json::from_slice(&text).unwrap();
    let next = page["next"].as_str().expect("more rows after the first");
    let raw = String::from_utf8_lossy(&playback::auth::b64url_decode(next).unwrap_or_default()).into_owned();
    assert!(!raw.contains("emea") && !raw.contains("recording#"), "the cursor is sealed: {raw:?}");
    let path = format!("/api/recordings?type=calls&limit=1&after={next}");
    let (_, _, text) = answer(&h, request("GET", &path, &[("authorization", &emea)])).await;
    let page: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(page["recordings"][0]["recording_id"], "emea/3.wav", "past the hidden apac/2.wav");
    let mut forged = next.to_string();
    forged.replace_range(..4, "AAAA");
    let path = format!("/api/recordings?type=calls&limit=1&after={forged}");
    let (status, _, _) = answer(&h, request("GET", &path, &[("authorization", &emea)])).await;
    assert_eq!(status, 400, "a cursor the list did not seal is refused");
    let (status, _, _) = answer(&h, request("GET", "/api/recordings?type=screens", &[("authorization", &qa)])).await;
    assert_eq!(status, 403);
    let (status, _, text) = answer(&h, request("GET", "/api/me", &[("authorization", &qa)])).await;
    let me: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(
        (status, me["groups"].clone(), me["types"][0]["recording_type"].clone()),
        (200, json!(["qa"]), json!("calls"))
    );
    assert_eq!(me["types"].as_array().unwrap().len(), 1);
}

/// The query of a URL, as pairs.
fn query_of(url: &str) -> Vec<(String, String)> {
    playback::route::parse_query(url.split_once('?').map(|(_, q)| q).unwrap_or_default())
}

fn param(pairs: &[(String, String)], name: &str) -> String {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// `name=value` of a Set-Cookie header.
fn set_cookie<'a>(head: &'a lambda_http::http::HeaderMap, name: &str) -> &'a str {
    head.get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {head:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_signs_in_with_the_code_flow_and_holds_only_a_signed_session_cookie() {
    let rig = Rig::new();
    rig.record("calls/a.wav", b"RIFF....WAVE", "audio/wav").await;
    rig.record("screens/s.webm", b"webm", "video/webm").await;
    let h = rig.handler();
    // The page needs no sign-in; it says who to ask for one.
    let (status, head, page) = answer(&h, request("GET", "/", &[])).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<audio"));
    assert!(head["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));

    // 1. Sign-in starts: to the identity provider, with PKCE (S256), a
    //    state and a nonce; the verifier stays in a signed cookie.
    let (status, head, _) = answer(&h, request("GET", "/auth/login", &[])).await;
    assert_eq!(status, 303);
    let location = head["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{ISSUER}/authorize?")), "{location}");
    let q = query_of(&location);
    assert_eq!(param(&q, "response_type"), "code");
    assert_eq!(param(&q, "client_id"), CLIENT_ID);
    assert_eq!(param(&q, "redirect_uri"), format!("{PLAYER_URL}/auth/callback"));
    assert_eq!(param(&q, "code_challenge_method"), "S256");
    assert_eq!(param(&q, "code_challenge").len(), 43);
    let login_cookie = set_cookie(&head, "__Host-callvault_login");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=600"] {
        assert!(login_cookie.contains(attribute), "{attribute}: {login_cookie}");
    }
    let login = login_cookie.split(';').next().unwrap().to_string();

    // 2. The person signs in at the identity provider, which redirects back
    //    with a code (bound to the challenge, the redirect and the nonce).
    let mut claims = IDP.claims("anna.qa", &["qa", "staff"]);
    claims["nonce"] = param(&q, "nonce").into();
    let code = IDP.issue_code(claims.clone(), &param(&q, "code_challenge"), &param(&q, "redirect_uri"));
    let state = param(&q, "state");
    // A callback with another state (a forged sign-in): refused.
    let (status, _, text) =
        answer(&h, request("GET", &format!("/auth/callback?code={code}&state=other"), &[("cookie", &login)])).await;
    assert_eq!(
        (status, serde_json::from_slice::<Value>(&text).unwrap()["error"].clone()),
        (400, json!("sign_in_failed"))
    );
    // Without the sign-in cookie (another browser): refused.
    let (status, _, _) = answer(&h, request("GET", &format!("/auth/callback?code={code}&state={state}"), &[])).await;
    assert_eq!(status, 400);
    // 3. The function exchanges the code itself, verifies the ID token and
    //    sets the session cookie; the browser gets no token.
    let (status, head, _) =
        answer(&h, request("GET", &format!("/auth/callback?code={code}&state={state}"), &[("cookie", &login)])).await;
    assert_eq!(status, 303);
    assert_eq!(head["location"], format!("{PLAYER_URL}/"));
    let session_cookie = set_cookie(&head, "__Host-callvault_session");
    // A __Host- cookie: Secure, Path=/ and no Domain, or the browser drops it.
    for attribute in ["HttpOnly", "SameSite=Lax", "; Secure", "; Path=/;"] {
        assert!(session_cookie.contains(attribute), "{attribute}: {session_cookie}");
    }
    assert!(!session_cookie.to_ascii_lowercase().contains("domain="), "{session_cookie}");
    assert!(set_cookie(&head, "__Host-callvault_login").contains("Max-Age=0"), "the sign-in cookie is deleted");
    let session = session_cookie.split(';').next().unwrap().to_string();
    let value = session.split_once('=').unwrap().1;
    assert_eq!(value.split('.').count(), 2, "a signed payload, not a JWT");
    let payload: Value =
        serde_json::from_slice(&playback::auth::b64url_decode(value.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(payload["sub"], "anna.qa");
    assert_eq!(payload["groups"], json!(["qa"]), "only the groups that grant something");
    let mut fields: Vec<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        ["email", "exp", "groups", "iat", "name", "sid", "sub"],
        "who, which groups, until when: no token"
    );
    // The code was used once: a replay is refused by the provider.
    let (status, _, _) =
        answer(&h, request("GET", &format!("/auth/callback?code={code}&state={state}"), &[("cookie", &login)])).await;
    assert_eq!(status, 400);

    // 4. The cookie plays what the person may play, and no more; behind
    //    CloudFront, `Authorization` holds its signature, not a person.
    let (status, _, bytes) = answer(&h, request("GET", "/recordings/calls/a.wav", &[("cookie", &session)])).await;
    assert_eq!((status, bytes.as_slice()), (200, &b"RIFF....WAVE"[..]));
    let cloudfront =
        [("cookie", session.as_str()), ("authorization", "AWS4-HMAC-SHA256 Credential=..., Signature=...")];
    let (status, _, _) = answer(&h, request("GET", "/recordings/calls/a.wav", &cloudfront)).await;
    assert_eq!(status, 200, "CloudFront's signature does not hide the session");
    let (status, _, _) = answer(&h, request("GET", "/recordings/screens/s.webm", &[("cookie", &session)])).await;
    assert_eq!(status, 403);
    // An altered cookie (more groups) is nobody's.
    let mut forged = payload.clone();
    forged["groups"] = json!(["supervisors"]);
    let forged = format!(
        "__Host-callvault_session={}.{}",
        b64url(forged.to_string().as_bytes()),
        value.split('.').nth(1).unwrap()
    );
    let (status, _, text) = answer(&h, request("GET", "/recordings/screens/s.webm", &[("cookie", &forged)])).await;
    assert_eq!(
        (status, serde_json::from_slice::<Value>(&text).unwrap()["error"].clone()),
        (401, json!("session_invalid"))
    );
    // Signing out deletes the cookie.
    let (status, head, _) = answer(&h, request("GET", "/auth/logout", &[("cookie", &session)])).await;
    assert_eq!(status, 303);
    assert!(set_cookie(&head, "__Host-callvault_session").contains("Max-Age=0"));
}

/// A session cookie sealed with `key` (an HMAC-SHA256 key) as the player
/// seals them: `payload.mac` over `session.<payload>`.
fn sealed_with(key: &aws_lc_rs::hmac::Key, session: &Value) -> String {
    let payload = b64url(session.to_string().as_bytes());
    let tag = aws_lc_rs::hmac::sign(key, format!("session.{payload}").as_bytes());
    format!("__Host-callvault_session={payload}.{}", b64url(tag.as_ref()))
}

/// Finding 3 of the safety review: the cookie key was HKDF of the client
/// secret (salt: the client id): whoever may read the client secret could
/// sign a session for anyone, with any group. Now the keys come from the
/// player's own random secret, and a session lasts SESSION_SECONDS from its
/// sign-in whatever its `exp` says.
#[tokio::test(flavor = "multi_thread")]
async fn only_a_sign_in_can_start_a_session_and_none_outlives_session_seconds() {
    use aws_lc_rs::{hkdf, hmac};
    let rig = Rig::new();
    rig.record("calls/a.wav", b"RIFF....WAVE", "audio/wav").await;
    let h = rig.handler();
    let now = playback::auth::now_secs();
    let session =
        |iat: u64, exp: u64| json!({ "sub": "x", "groups": ["supervisors"], "sid": "forged", "iat": iat, "exp": exp });
    let refused = |text: &[u8]| serde_json::from_slice::<Value>(text).unwrap()["error"].clone();

    // Signed with the key the client secret gave (the old derivation).
    let from_client_secret = {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, CLIENT_ID.as_bytes()).extract(IDP.client_secret.as_bytes());
        hmac::Key::from(prk.expand(&[b"callvault player cookies v1"], hmac::HMAC_SHA256).unwrap())
    };
    let forged = sealed_with(&from_client_secret, &session(now, 4_102_444_800));
    let (status, _, text) = answer(&h, request("GET", "/recordings/calls/a.wav", &[("cookie", &forged)])).await;
    assert_eq!((status, refused(&text)), (401, json!("session_invalid")), "whoever knows the client secret");
    // Nor with the client secret itself, or the new derivation over it.
    for secret in [IDP.client_secret.as_bytes(), CLIENT_ID.as_bytes()] {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"callvault player session keys v2").extract(secret);
        let key = hmac::Key::from(prk.expand(&[b"callvault player cookies v2"], hmac::HMAC_SHA256).unwrap());
        let forged = sealed_with(&key, &session(now, now + 600));
        let (status, _, _) = answer(&h, request("GET", "/recordings/calls/a.wav", &[("cookie", &forged)])).await;
        assert_eq!(status, 401);
    }

    // The player's own key: a session within SESSION_SECONDS of its sign-in plays.
    let own = playback::auth::session::CookieKey::from_secrets(&[SESSION_KEYS.as_bytes()]);
    let cookie = |value: &Value| format!("__Host-callvault_session={}", own.seal("session", value));
    let fresh = cookie(&session(now - 60, now + 600));
    let (status, _, _) = answer(&h, request("GET", "/recordings/calls/a.wav", &[("cookie", &fresh)])).await;
    assert_eq!(status, 200);
    // Older than SESSION_SECONDS: refused, whatever its exp says.
    let old = cookie(&session(now - SESSION_SECONDS - 5, 4_102_444_800));
    let (status, _, text) = answer(&h, request("GET", "/recordings/calls/a.wav", &[("cookie", &old)])).await;
    assert_eq!((status, refused(&text)), (401, json!("session_invalid")), "a session past SESSION_SECONDS");
    // Begun in the future (beyond the clocks' leeway): refused.
    let future = cookie(&session(now + 3600, now + 7200));
    let (status, _, _) = answer(&h, request("GET", "/recordings/calls/a.wav", &[("cookie", &future)])).await;
    assert_eq!(status, 401);
}
