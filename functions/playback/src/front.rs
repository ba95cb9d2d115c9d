//! Whether a request came through the player's front (the CloudFront
//! distribution), and the viewer's address the front gives.
//!
//! Behind CloudFront the Function URL's `sourceIp` is an edge server's;
//! CloudFront tells the viewer's address in `CloudFront-Viewer-Address`
//! (`<ip>:<port>`, listed in the origin request policy). Anyone may send that
//! header, though: a tool calling the Function URL directly (IAM-signed)
//! could choose the address it is audited with. So the header counts only
//! beside [`FRONT_HEADER`], which the distribution adds to every request
//! (an origin custom header) with a value only it and this function know
//! (the template's `PlayerFrontSecret`, read at start). A request "through
//! the distribution" is exactly one whose [`FRONT_HEADER`] matches: its
//! viewer address is audited as `source_ip` (the edge's as `edge_ip`), and
//! any other request is audited with its `sourceIp`, whatever headers it
//! sent.

use std::net::IpAddr;

use lambda_http::http::HeaderMap;
use zeroize::Zeroizing;

/// The header the distribution adds to every request it forwards.
pub const FRONT_HEADER: &str = "X-Callvault-Front";
/// The viewer's address, as CloudFront sends it.
pub const VIEWER_ADDRESS: &str = "cloudfront-viewer-address";

/// The front's secret: the versions of `PlayerFrontSecret` (current, and
/// the previous one while a rotation reaches the distribution).
pub struct FrontKey {
    versions: Vec<Zeroizing<Vec<u8>>>,
}

impl FrontKey {
    /// The key, from the secret's versions (empty ones ignored).
    pub fn new<S: AsRef<str>>(versions: &[S]) -> Self {
        Self {
            versions: versions
                .iter()
                .map(|v| v.as_ref().trim())
                .filter(|v| !v.is_empty())
                .map(|v| Zeroizing::new(v.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// Whether the request carries the front's header with a value of the
    /// secret (compared in constant time).
    pub fn vouches(&self, headers: &HeaderMap) -> bool {
        let Some(sent) = headers.get(FRONT_HEADER).map(|v| v.as_bytes()) else { return false };
        self.versions.iter().any(|v| aws_lc_rs::constant_time::verify_slices_are_equal(v, sent).is_ok())
    }
}

/// The viewer's IP address from `CloudFront-Viewer-Address` when `front`
/// vouches for the request; `None` otherwise (no front configured, no or a
/// wrong secret, no or a malformed address).
pub fn viewer_ip(headers: &HeaderMap, front: Option<&FrontKey>) -> Option<String> {
    if !front.is_some_and(|f| f.vouches(headers)) {
        return None;
    }
    let value = headers.get(VIEWER_ADDRESS)?.to_str().ok()?.trim();
    // `<ip>:<port>`; an IPv6 address is written without brackets.
    let (ip, port) = value.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_viewer_address_counts_only_beside_the_fronts_secret() {
        let key = FrontKey::new(&["current-secret-0123456789abcdef0123", "previous-secret-0123456789abcdef01"]);
        let through =
            headers(&[(FRONT_HEADER, "current-secret-0123456789abcdef0123"), (VIEWER_ADDRESS, "198.51.100.10:46532")]);
        assert_eq!(viewer_ip(&through, Some(&key)).as_deref(), Some("198.51.100.10"));
        let previous =
            headers(&[(FRONT_HEADER, "previous-secret-0123456789abcdef01"), (VIEWER_ADDRESS, "2001:db8::1:443")]);
        assert_eq!(viewer_ip(&previous, Some(&key)).as_deref(), Some("2001:db8::1"));
        // A direct caller's own header, with no secret or a guessed one.
        for forged in [
            headers(&[(VIEWER_ADDRESS, "203.0.113.7:1")]),
            headers(&[(FRONT_HEADER, "guess"), (VIEWER_ADDRESS, "203.0.113.7:1")]),
            headers(&[(FRONT_HEADER, ""), (VIEWER_ADDRESS, "203.0.113.7:1")]),
        ] {
            assert_eq!(viewer_ip(&forged, Some(&key)), None);
        }
        // No front configured: never trusted.
        assert_eq!(viewer_ip(&through, None), None);
        assert_eq!(viewer_ip(&through, Some(&FrontKey::new::<&str>(&[]))), None);
        // Malformed addresses are not recorded.
        for bad in ["198.51.100.10", "not-an-ip:80", "198.51.100.10:port", ""] {
            let h = headers(&[(FRONT_HEADER, "current-secret-0123456789abcdef0123"), (VIEWER_ADDRESS, bad)]);
            assert_eq!(viewer_ip(&h, Some(&key)), None, "{bad}");
        }
    }
}
