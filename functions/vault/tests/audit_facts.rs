//! The rotation audit's KMS facts through the real SDK adapter, with
//! operation-level mocks for what the local AWS cannot answer: the rotation
//! period and the next rotation date of GetKeyRotationStatus.

use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
use aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusOutput;
use aws_sdk_kms::operation::list_key_rotations::ListKeyRotationsOutput;
use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyState as SdkKeyState, OriginType, RotationType, RotationsListEntry};
use aws_sdk_kms::Client;
use aws_smithy_mocks::{mock, mock_client, Rule};
use aws_smithy_types::DateTime;
use vault::audit::{judge, Policy, Verdict};
use vault::kms::{AwsKms, KeyState};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const NOW: i64 = 1_795_512_600;
const DAY: i64 = 86_400;

fn describe(created_days_ago: i64) -> Rule {
    mock!(Client::describe_key).then_output(move || {
        DescribeKeyOutput::builder()
            .key_metadata(
                KeyMetadata::builder()
                    .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
                    .arn(ARN)
                    .key_state(SdkKeyState::Enabled)
                    .key_spec(KeySpec::SymmetricDefault)
                    .origin(OriginType::AwsKms)
                    .multi_region(false)
                    .creation_date(DateTime::from_secs(NOW - created_days_ago * DAY))
                    .build()
                    .unwrap(),
            )
            .build()
    })
}

fn rotation(enabled: bool, period: Option<i32>, next_in_days: Option<i64>) -> Rule {
    mock!(Client::get_key_rotation_status).then_output(move || {
        GetKeyRotationStatusOutput::builder()
            .key_rotation_enabled(enabled)
            .key_id(ARN)
            .set_rotation_period_in_days(period)
            .set_next_rotation_date(next_in_days.map(|d| DateTime::from_secs(NOW + d * DAY)))
            .build()
    })
}

fn rotations(last_days_ago: Option<(i64, RotationType)>) -> Rule {
    mock!(Client::list_key_rotations).then_output(move || {
        let mut out = ListKeyRotationsOutput::builder();
        if let Some((days, kind)) = last_days_ago.clone() {
            out = out.rotations(
                RotationsListEntry::builder()
                    .key_id(ARN)
                    .rotation_date(DateTime::from_secs(NOW - days * DAY))
                    .rotation_type(kind)
                    .build(),
            );
        }
        out.build()
    })
}

async fn facts(rules: &[&Rule]) -> vault::audit::AuditFacts {
    let client = match rules {
        [a, b, c] => mock_client!(aws_sdk_kms, [*a, *b, *c]),
        _ => unreachable!("three rules"),
    };
    AwsKms::from_client(client).audit_facts(ARN).await
}

#[tokio::test]
async fn the_rotation_period_and_next_rotation_date_come_through_the_adapter() {
    let f = facts(&[
        &describe(800),
        &rotation(true, Some(180), Some(40)),
        &rotations(Some((140, RotationType::Automatic))),
    ])
    .await;
    assert_eq!(f.state, Some(KeyState::Enabled));
    assert_eq!((f.rotation_enabled, f.rotation_period_days), (Some(true), Some(180)));
    assert_eq!(f.next_rotation, Some(NOW + 40 * DAY));
    assert_eq!((f.last_rotation, f.last_rotation_type.as_deref()), (Some(NOW - 140 * DAY), Some("AUTOMATIC")));
    assert_eq!(f.created, Some(NOW - 800 * DAY));
    let j = judge(&f, &Policy { max_key_age_days: 365 }, "us-east-1", NOW);
    assert_eq!((j.verdict, j.days_since_rotation), (Verdict::Compliant, Some(140)));
}

#[tokio::test]
async fn a_period_longer_than_the_policy_with_old_material_is_non_compliant() {
    let f = facts(&[&describe(800), &rotation(true, Some(730), Some(200)), &rotations(None)]).await;
    let j = judge(&f, &Policy { max_key_age_days: 365 }, "us-east-1", NOW);
    assert_eq!(j.verdict, Verdict::NonCompliant, "{j:?}");
    assert!(j.reasons[0].contains("every 730 days") && j.reasons[0].contains("800 days old"), "{j:?}");
    // Rotated on demand recently: compliant whatever the period.
    let f = facts(&[&describe(800), &rotation(false, None, None), &rotations(Some((3, RotationType::OnDemand)))]).await;
    let j = judge(&f, &Policy { max_key_age_days: 365 }, "us-east-1", NOW);
    assert_eq!((j.verdict, f.last_rotation_type.as_deref()), (Verdict::Compliant, Some("ON_DEMAND")));
}
