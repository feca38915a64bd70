//! Referrers on a registry without the API (distribution 2.8): the fallback tag, kept by us.

use std::collections::BTreeMap;

use bytes::Bytes;
use gantry_oci::{Artifact, ArtifactLayer, CopyOptions, ReferrersSource};
use gantry_testkit::{Auth, Registry};

use crate::support::{client_for, push_image, reference};

fn sbom(subject: &gantry_oci::Manifest, text: &str) -> Artifact {
    Artifact {
        artifact_type: "application/vnd.cyclonedx+json".into(),
        layers: vec![ArtifactLayer {
            media_type: "application/vnd.cyclonedx+json".into(),
            bytes: Bytes::from(text.to_owned()),
            annotations: BTreeMap::new(),
        }],
        subject: Some(subject.descriptor()),
        annotations: BTreeMap::from([(
            "org.opencontainers.image.created".into(),
            "2026-11-22T00:00:00Z".into(),
        )]),
    }
}

#[tokio::test]
async fn artifacts_with_a_subject_are_found_through_the_fallback_tag() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let repo = reference(&registry, "team/app");
    let image = push_image(&client, &reference(&registry, "team/app:dev"), &[b"x"]).await;
    let first = client
        .push_artifact(&repo, &sbom(&image, "{\"bom\":1}"))
        .await
        .expect("push sbom");
    let second = client
        .push_artifact(&repo, &sbom(&image, "{\"bom\":2}"))
        .await
        .expect("push second");
    client
        .push_artifact(&repo, &sbom(&image, "{\"bom\":2}"))
        .await
        .expect("same artifact again");

    let subject = repo.with_digest(image.digest.clone());
    let referrers = client.referrers(&subject, None).await.expect("referrers");
    assert_eq!(referrers.source, ReferrersSource::FallbackTag);
    let digests: Vec<_> = referrers
        .descriptors
        .iter()
        .map(|d| d.digest.clone())
        .collect();
    assert_eq!(
        digests,
        [first.digest.clone(), second.digest.clone()],
        "deduplicated, in order"
    );
    assert_eq!(
        referrers.descriptors[0].artifact_type.as_deref(),
        Some("application/vnd.cyclonedx+json")
    );
    let filtered = client
        .referrers(&subject, Some("application/spdx+json"))
        .await
        .expect("filtered");
    assert!(filtered.descriptors.is_empty());
}

#[tokio::test]
async fn referrers_travel_with_a_cross_repository_copy() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let image = push_image(&client, &reference(&registry, "team/app:dev"), &[b"x"]).await;
    let sbom = client
        .push_artifact(&reference(&registry, "team/app"), &sbom(&image, "{}"))
        .await
        .expect("sbom");
    let report = client
        .copy(
            &reference(&registry, "team/app:dev"),
            &reference(&registry, "prod/app:live"),
            CopyOptions::default(),
        )
        .await
        .expect("copy");
    assert_eq!(report.referrers, std::slice::from_ref(&sbom.digest));
    let at_target = client
        .referrers(
            &reference(&registry, "prod/app").with_digest(image.digest.clone()),
            None,
        )
        .await
        .expect("referrers at target");
    assert_eq!(
        at_target
            .descriptors
            .iter()
            .map(|d| &d.digest)
            .collect::<Vec<_>>(),
        [&sbom.digest]
    );
}
