//! Algorithm suites of the AWS Encryption SDK.

/// AES_256_GCM_HKDF_SHA512_COMMIT_KEY: committing, unsigned; the only suite
/// this crate writes or reads.
pub const COMMIT_KEY_UNSIGNED: u16 = 0x0478;
/// AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384: the signed variant, refused.
pub const COMMIT_KEY_SIGNED: u16 = 0x0578;

/// The name of a suite id, for error messages.
pub fn suite_name(id: u16) -> &'static str {
    match id {
        0x0014 => "AES_128_GCM_IV12_TAG16_NO_KDF",
        0x0046 => "AES_192_GCM_IV12_TAG16_NO_KDF",
        0x0078 => "AES_256_GCM_IV12_TAG16_NO_KDF",
        0x0114 => "AES_128_GCM_IV12_TAG16_HKDF_SHA256",
        0x0146 => "AES_192_GCM_IV12_TAG16_HKDF_SHA256",
        0x0178 => "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
        0x0214 => "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256",
        0x0346 => "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
        0x0378 => "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
        COMMIT_KEY_UNSIGNED => "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
        COMMIT_KEY_SIGNED => "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 (signed)",
        _ => "unknown suite",
    }
}
