//! Referrers: through the API on gantry-registry, through the fallback tag (kept by us) on
//! distribution, and carried along by copies either way.

use std::collections::BTreeMap;

use bytes::Bytes;
use gantry_oci::{Artifact, ArtifactLayer, CopyOptions, ReferrersSource};
use gantry_testkit::{Auth, Backend, Registry};

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

fn expected_source(backend: Backend) -> ReferrersSource {
    match backend {
        Backend::Distribution => ReferrersSource::FallbackTag,
        Backend::Gantry => ReferrersSource::Api,
    }
}

on_both_backends!(async fn artifacts_with_a_subject_are_found_as_referrers(backend) {
    let Some(registry) = Registry::start_on(backend, Auth::Anonymous) else { return };
    let client = client_for(&registry);
    let repo = reference(&registry, "team/app");
    let image = push_image(&client, &reference(&registry, "team/app:dev"), &[b"x"]).await;
    let first = client.push_artifact(&repo, &sbom(&image, "{\"bom\":1}")).await.expect("push sbom");
    let second = client.push_artifact(&repo, &sbom(&image, "{\"bom\":2}")).await.expect("push second");
    client.push_artifact(&repo, &sbom(&image, "{\"bom\":2}")).await.expect("same artifact again");

    let subject = repo.with_digest(image.digest.clone());
    let referrers = client.referrers(&subject, None).await.expect("referrers");
    assert_eq!(referrers.source, expected_source(backend));
    let mut digests: Vec<_> = referrers.descriptors.iter().map(|d| d.digest.clone()).collect();
    let mut expected = vec![first.digest.clone(), second.digest.clone()];
    digests.sort();
    expected.sort();
    assert_eq!(digests, expected, "each referrer once");
    assert!(referrers.descriptors.iter().all(|d| d.artifact_type.as_deref() == Some("application/vnd.cyclonedx+json")));
    let filtered = client.referrers(&subject, Some("application/spdx+json")).await.expect("filtered");
    assert!(filtered.descriptors.is_empty());
    let kept = client.referrers(&subject, Some("application/vnd.cyclonedx+json")).await.expect("filtered");
    assert_eq!(kept.descriptors.len(), 2);
    let fallback = client.head_manifest(&repo.with_tag(&image.digest.fallback_tag()).expect("tag")).await.expect("head");
    assert_eq!(fallback.is_some(), backend == Backend::Distribution, "a fallback tag only where the API is missing");
});

on_both_backends!(async fn referrers_travel_with_a_cross_repository_copy(backend) {
    let Some(registry) = Registry::start_on(backend, Auth::Anonymous) else { return };
    let client = client_for(&registry);
    let image = push_image(&client, &reference(&registry, "team/app:dev"), &[b"x"]).await;
    let sbom = client.push_artifact(&reference(&registry, "team/app"), &sbom(&image, "{}")).await.expect("sbom");
    let report = client
        .copy(&reference(&registry, "team/app:dev"), &reference(&registry, "prod/app:live"), CopyOptions::default())
        .await
        .expect("copy");
    assert_eq!(report.referrers, std::slice::from_ref(&sbom.digest));
    let at_target = client
        .referrers(&reference(&registry, "prod/app").with_digest(image.digest.clone()), None)
        .await
        .expect("referrers at target");
    assert_eq!(at_target.source, expected_source(backend));
    assert_eq!(at_target.descriptors.iter().map(|d| &d.digest).collect::<Vec<_>>(), [&sbom.digest]);
});

#[tokio::test]
async fn referrers_cross_from_a_registry_without_the_api_to_one_with_it() {
    let Some(source) = Registry::start_on(Backend::Distribution, Auth::Anonymous) else {
        return;
    };
    let Some(target) = Registry::start_on(Backend::Gantry, Auth::Anonymous) else {
        return;
    };
    let client = crate::support::client_for_all(&[&source, &target]);
    let image = push_image(&client, &reference(&source, "team/app:dev"), &[b"x"]).await;
    let sbom = client
        .push_artifact(&reference(&source, "team/app"), &sbom(&image, "{}"))
        .await
        .expect("sbom");
    client
        .copy(
            &reference(&source, "team/app:dev"),
            &reference(&target, "prod/app:live"),
            CopyOptions::default(),
        )
        .await
        .expect("copy");
    let at_target = client
        .referrers(
            &reference(&target, "prod/app").with_digest(image.digest.clone()),
            None,
        )
        .await
        .expect("referrers");
    assert_eq!(at_target.source, ReferrersSource::Api);
    assert_eq!(
        at_target
            .descriptors
            .iter()
            .map(|d| &d.digest)
            .collect::<Vec<_>>(),
        [&sbom.digest]
    );
    let fallback = reference(&target, "prod/app")
        .with_tag(&image.digest.fallback_tag())
        .expect("tag");
    assert!(
        client
            .head_manifest(&fallback)
            .await
            .expect("head")
            .is_none(),
        "no fallback tag on an API registry"
    );
}
