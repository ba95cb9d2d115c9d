//! KMS key ARNs, and the region a key must be in.

use crate::ports::keys::KeyError;

/// The parts of a KMS ARN: `arn:<partition>:kms:<region>:<account>:key/<id>`
/// (or `alias/<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    /// `key/<id>` or `alias/<name>`.
    pub resource: &'a str,
}

impl<'a> KmsArn<'a> {
    /// Parses a KMS ARN; `None` for anything else (bare key ids, alias names).
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut parts = s.splitn(6, ':');
        let (arn, partition, service, region, account, resource) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let valid = arn == "arn"
            && partition.starts_with("aws")
            && service == "kms"
            && !region.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && (resource.strip_prefix("key/").is_some_and(|id| !id.is_empty())
                || resource.strip_prefix("alias/").is_some_and(|n| !n.is_empty()));
        valid.then_some(Self { partition, region, account, resource })
    }

    /// Whether this names a key (not an alias).
    pub fn is_key(&self) -> bool {
        self.resource.starts_with("key/")
    }
}

impl KmsArn<'_> {
    /// Whether this names a multi-Region key (`key/mrk-...`): the same key
    /// id names the primary and its replicas, one per region, which share
    /// their key material.
    pub fn is_multi_region(&self) -> bool {
        self.resource.starts_with("key/mrk-")
    }

    /// The same key's ARN in `region`: for a multi-Region key, its replica
    /// there.
    pub fn in_region(&self, region: &str) -> String {
        format!("arn:{}:kms:{region}:{}:{}", self.partition, self.account, self.resource)
    }
}

/// Whether `a` and `b` name the same key: the same ARN, or the same
/// multi-Region key in any two regions (as the official SDK's MRK-aware
/// keyrings match them).
pub fn same_key(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (KmsArn::parse(a), KmsArn::parse(b)) {
        (Some(x), Some(y)) => {
            x.is_multi_region() && x.resource == y.resource && x.partition == y.partition && x.account == y.account
        }
        _ => false,
    }
}

/// The region of a KMS ARN, if `s` is one.
pub fn region_of(s: &str) -> Option<&str> {
    KmsArn::parse(s).map(|a| a.region)
}

/// Refuses a key whose ARN names another region than `region`.
pub fn check_region(key: &str, region: &str) -> Result<(), KeyError> {
    match region_of(key) {
        Some(r) if r != region => {
            Err(KeyError::WrongRegion { key: key.to_string(), key_region: r.to_string(), expected: region.to_string() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_and_alias_arns() {
        let a = KmsArn::parse("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab").unwrap();
        assert_eq!((a.region, a.account, a.is_key()), ("eu-west-1", "123456789012", true));
        let a = KmsArn::parse("arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/rec").unwrap();
        assert!(!a.is_key());
    }

    #[test]
    fn a_multi_region_key_is_the_same_key_in_every_region_and_no_other_key_is() {
        let east = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab";
        let west = "arn:aws:kms:us-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab";
        assert!(same_key(east, west) && same_key(west, east));
        assert_eq!(KmsArn::parse(east).unwrap().in_region("us-west-2"), west);
        let single = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert!(same_key(single, single));
        assert!(
            !same_key(single, &single.replace("us-east-1", "us-west-2")),
            "a single-region key is its region's only"
        );
        assert!(!same_key(east, &west.replace("123456789012", "210987654321")), "another account's");
        assert!(!same_key(east, &west.replace("mrk-1234", "mrk-9999")), "another key");
        assert!(!same_key(east, "mrk-1234abcd12ab34cd56ef1234567890ab"), "a bare id is not an ARN");
    }

    #[test]
    fn refuses_what_is_not_a_kms_arn() {
        for s in [
            "1234abcd-12ab",
            "alias/rec",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:eu-west-1:12345:key/x",
            "arn:aws:kms::123456789012:key/x",
            "arn:aws:kms:eu-west-1:123456789012:key/",
        ] {
            assert!(KmsArn::parse(s).is_none(), "{s}");
        }
    }
}
