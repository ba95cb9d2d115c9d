//! The HTTP `Range` header (RFC 9110 section 14): one byte range, served
//! capped so a response also fits a buffered front.

use std::ops::Range;

/// One requested byte range, before the recording's length is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` (`end` inclusive) or `bytes=a-` (`end` = None).
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// A `Range` header playback does not serve.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RangeError {
    #[error("Range {0:?} is malformed: send one range as bytes=START-END, bytes=START- or bytes=-LENGTH")]
    Malformed(String),
    #[error("Range {0:?} asks for several ranges: send one range per request")]
    Multiple(String),
}

impl ByteRange {
    /// Parses a `Range` header value.
    pub fn parse(value: &str) -> Result<Self, RangeError> {
        let malformed = || RangeError::Malformed(value.to_string());
        let (unit, set) = value.trim().split_once('=').ok_or_else(malformed)?;
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return Err(malformed());
        }
        if set.contains(',') {
            return Err(RangeError::Multiple(value.to_string()));
        }
        let (first, last) = set.trim().split_once('-').ok_or_else(malformed)?;
        let number = |s: &str| -> Result<u64, RangeError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            s.parse().map_err(|_| malformed())
        };
        match (first, last) {
            ("", n) => Ok(Self::Suffix(number(n)?)),
            (a, "") => Ok(Self::From { start: number(a)?, end: None }),
            (a, b) => {
                let (start, end) = (number(a)?, number(b)?);
                if end < start {
                    return Err(malformed());
                }
                Ok(Self::From { start, end: Some(end) })
            }
        }
    }

    /// The bytes this range selects of a `len`-byte representation (end
    /// exclusive), at most `cap` of them; `None` when it selects nothing
    /// (416).
    pub fn resolve(self, len: u64, cap: u64) -> Option<Range<u64>> {
        let range = match self {
            Self::From { start, .. } if start >= len => return None,
            Self::From { start, end } => start..end.map_or(len, |e| e.saturating_add(1).min(len)),
            Self::Suffix(0) => return None,
            Self::Suffix(_) if len == 0 => return None,
            Self::Suffix(n) => len.saturating_sub(n)..len,
        };
        Some(range.start..range.end.min(range.start.saturating_add(cap.max(1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse() {
        assert_eq!(ByteRange::parse("bytes=0-99"), Ok(ByteRange::From { start: 0, end: Some(99) }));
        assert_eq!(ByteRange::parse("bytes=100-"), Ok(ByteRange::From { start: 100, end: None }));
        assert_eq!(ByteRange::parse("bytes=-500"), Ok(ByteRange::Suffix(500)));
        assert_eq!(ByteRange::parse(" Bytes = 5-5 "), Ok(ByteRange::From { start: 5, end: Some(5) }));
    }

    #[test]
    fn malformed_and_multiple_ranges_are_refused() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "items=0-1",
            "bytes=a-b",
            "bytes=5-4",
            "bytes=+1-2",
            "bytes=1-2-3",
            "bytes=99999999999999999999999-",
        ] {
            assert!(matches!(ByteRange::parse(bad), Err(RangeError::Malformed(_))), "{bad}");
        }
        assert!(matches!(ByteRange::parse("bytes=0-1,5-6"), Err(RangeError::Multiple(_))));
    }

    #[test]
    fn ranges_resolve_against_the_length_and_the_cap() {
        let r = |s: &str, len, cap| ByteRange::parse(s).unwrap().resolve(len, cap);
        assert_eq!(r("bytes=0-0", 10, 100), Some(0..1));
        assert_eq!(r("bytes=9-", 10, 100), Some(9..10));
        assert_eq!(r("bytes=5-1000", 10, 100), Some(5..10));
        assert_eq!(r("bytes=-3", 10, 100), Some(7..10));
        assert_eq!(r("bytes=-30", 10, 100), Some(0..10));
        assert_eq!(r("bytes=0-", 1000, 100), Some(0..100), "capped");
        assert_eq!(r("bytes=-500", 1000, 100), Some(500..600), "capped from its start");
        assert_eq!(r("bytes=10-", 10, 100), None);
        assert_eq!(r("bytes=10-20", 10, 100), None);
        assert_eq!(r("bytes=-0", 10, 100), None);
        assert_eq!(r("bytes=0-", 0, 100), None);
        assert_eq!(r("bytes=-1", 0, 100), None);
    }
}
