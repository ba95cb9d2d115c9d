//! Paths: `/recordings/<type>/<id>` (the audio) and
//! `/recordings/<type>/<id>/info` (metadata). An id may hold slashes, as the
//! ingest key did; each segment is percent-decoded, so an id whose last
//! segment is `info` is reached by encoding its last slash as `%2F`.
//!
//! The player: `/` (its page, and `/player.js`, `/player.css`), the browser
//! sign-in (`/auth/login`, `/auth/callback`, `/auth/logout`), and its API
//! (`/api/me`, `/api/recordings?type=&from=&to=&after=`).

use lambda_http::http::{header, HeaderMap, HeaderValue};
use percent_encoding::percent_decode_str;
use vault::recording::RecordingId;

/// What a path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Audio(RecordingId),
    Info(RecordingId),
    /// The player page.
    Page,
    /// A file of the page: its name.
    Asset(&'static str),
    Login,
    Callback,
    Logout,
    /// Who is signed in, and what they may play.
    Me,
    /// The recordings a person may play.
    List,
}

/// The page's files, served with the function: (path, content type, body).
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("player.js", "text/javascript; charset=utf-8", include_str!("../player/player.js")),
    ("player.css", "text/css; charset=utf-8", include_str!("../player/player.css")),
];

/// A path that names no recording.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{problem}: use /recordings/<type>/<id>, /recordings/<type>/<id>/info, or the player at /")]
pub struct PathError {
    pub problem: String,
}

impl Route {
    /// Parses a raw (still percent-encoded) path.
    pub fn parse(raw_path: &str) -> Result<Self, PathError> {
        let bad = |problem: &str| PathError { problem: problem.to_string() };
        match raw_path {
            "" | "/" => return Ok(Self::Page),
            "/auth/login" => return Ok(Self::Login),
            "/auth/callback" => return Ok(Self::Callback),
            "/auth/logout" => return Ok(Self::Logout),
            "/api/me" => return Ok(Self::Me),
            "/api/recordings" => return Ok(Self::List),
            _ => {}
        }
        if let Some((name, _, _)) = ASSETS.iter().find(|(name, _, _)| raw_path.strip_prefix('/') == Some(name)) {
            return Ok(Self::Asset(name));
        }
        let rest = raw_path.strip_prefix("/recordings/").ok_or_else(|| bad("the path is not under /recordings/"))?;
        let mut segments = rest
            .split('/')
            .map(|s| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|d| d.into_owned())
                    .map_err(|_| bad("the path is not percent-encoded UTF-8"))
            })
            .collect::<Result<Vec<String>, _>>()?;
        if segments.iter().any(|s| s.is_empty()) {
            return Err(bad("the path has an empty segment"));
        }
        if segments.iter().any(|s| s.chars().any(char::is_control)) {
            return Err(bad("the path holds control characters"));
        }
        let info = segments.len() > 2 && rest.ends_with("/info");
        if info {
            segments.pop();
        }
        if segments.len() < 2 {
            return Err(bad("the path names no recording type and id"));
        }
        let recording_type = segments.remove(0);
        if recording_type.contains('/') {
            return Err(bad("a recording type holds no slash"));
        }
        let id = RecordingId { recording_type, recording_id: segments.join("/") };
        if id.recording_id.len() > 1024 {
            return Err(bad("the recording id is longer than an S3 key"));
        }
        Ok(if info { Self::Info(id) } else { Self::Audio(id) })
    }
}

pub fn query_string(uri: &lambda_http::http::Uri) -> &str {
    uri.path_and_query().and_then(|pq| pq.as_str().split_once('?')).map_or("", |(_, q)| q)
}

/// The pairs of a query string, form-decoded.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A request header as text (`None`: absent or not text).
pub(crate) fn header_str(headers: &HeaderMap<HeaderValue>, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(t: &str, i: &str) -> RecordingId {
        RecordingId { recording_type: t.into(), recording_id: i.into() }
    }

    #[test]
    fn audio_and_info_paths_parse_with_ids_that_hold_slashes_and_escapes() {
        assert_eq!(Route::parse("/recordings/calls/abc.wav"), Ok(Route::Audio(id("calls", "abc.wav"))));
        assert_eq!(Route::parse("/recordings/calls/abc.wav/info"), Ok(Route::Info(id("calls", "abc.wav"))));
        assert_eq!(
            Route::parse("/recordings/calls/2026/11/a%20b%2Bc.wav"),
            Ok(Route::Audio(id("calls", "2026/11/a b+c.wav")))
        );
        assert_eq!(Route::parse("/recordings/calls/x%2Finfo"), Ok(Route::Audio(id("calls", "x/info"))));
        assert_eq!(Route::parse("/recordings/calls/info"), Ok(Route::Audio(id("calls", "info"))));
        assert_eq!(Route::parse("/recordings/calls/%C3%A9t%C3%A9"), Ok(Route::Audio(id("calls", "été"))));
    }

    #[test]
    fn the_player_and_its_sign_in_have_their_own_paths() {
        assert_eq!(Route::parse("/"), Ok(Route::Page));
        assert_eq!(Route::parse(""), Ok(Route::Page));
        assert_eq!(Route::parse("/player.js"), Ok(Route::Asset("player.js")));
        assert_eq!(Route::parse("/auth/callback"), Ok(Route::Callback));
        assert_eq!(Route::parse("/api/recordings"), Ok(Route::List));
        assert!(Route::parse("/player.jsx").is_err());
        assert!(Route::parse("/api/other").is_err());
    }

    #[test]
    fn paths_that_name_no_recording_are_refused() {
        for bad in [
            "/recordings",
            "/recordings/",
            "/recordings/calls",
            "/recordings/calls/",
            "/recordings//x",
            "/recordings/calls//x",
            "/recordings/calls/x/",
            "/recordings/calls/%FF",
            "/recordings/calls/%0A",
            "/recordings/a%2Fb/x",
            "/other/calls/x",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }
}
