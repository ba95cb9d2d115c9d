//! KMS key ARNs.

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

/// The region of a KMS ARN, if `s` is one.
pub fn region_of(s: &str) -> Option<&str> {
    KmsArn::parse(s).map(|a| a.region)
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
