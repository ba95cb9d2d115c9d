//! Refusals: what an error body may say.

mod common;

use common::*;
use vault::ports::catalog::CatalogError;

#[tokio::test(flavor = "multi_thread")]
async fn error_bodies_carry_the_code_and_a_fixed_text_never_aws_details() {
    let rig = Rig::new();
    rig.record("calls/a", b"abc", "audio/wav").await;
    let h = rig.handler();
    let secret = "AccessDeniedException: User arn:aws:sts::111122223333:assumed-role/cv-playback is not authorized on table cv-prod-catalog";
    rig.catalog
        .faults
        .fail_next("recording", CatalogError::AccessDenied { table: "cv-prod-catalog".into(), detail: secret.into() });
    let (parts, b) = h.handle(get("/recordings/calls/a")).await.into_parts();
    let text = String::from_utf8(body(b).await).unwrap();
    assert_eq!(parts.status, 500);
    assert_eq!(parts.headers["x-content-type-options"], "nosniff");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"], "access_denied");
    assert!(!text.contains("cv-prod-catalog") && !text.contains("assumed-role"), "{text}");

    rig.catalog.faults.fail_next(
        "recording",
        CatalogError::Unavailable { detail: "ProvisionedThroughputExceededException on cv-prod-catalog".into() },
    );
    let (parts, b) = h.handle(get("/recordings/calls/a")).await.into_parts();
    let text = String::from_utf8(body(b).await).unwrap();
    assert_eq!((parts.status.as_u16(), parts.headers["retry-after"].to_str().unwrap()), (503, "1"));
    assert!(text.contains("catalog_unavailable") && !text.contains("cv-prod-catalog"), "{text}");

    rig.kms.faults.fail_next(
        "Decrypt",
        vault::KeyError::AccessDenied { key: "arn:aws:kms:us-east-1:111122223333:key/k".into(), detail: secret.into() },
    );
    let (parts, b) = h.handle(get("/recordings/calls/a")).await.into_parts();
    let text = String::from_utf8(body(b).await).unwrap();
    assert_eq!(parts.status, 403);
    assert!(text.contains("key_access_denied") && text.contains("administrator of KMS key arn:aws:kms:"), "{text}");
    assert!(!text.contains("assumed-role"), "the KMS message stays in the log: {text}");
}
