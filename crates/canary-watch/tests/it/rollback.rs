//! The rollback of a tag on real registries (CNCF distribution and gantry's): three requests,
//! read back, referrers of both digests untouched; a tag someone else moved is left alone.

use bytes::Bytes;
use canary_watch::rollback::{RolledBack, prepare, roll_back};
use gantry_oci::{
    Artifact, ArtifactLayer, Client, ImageConfig, ImageFile, Reference, ScratchImage,
};
use gantry_testkit::{Auth, Backend, Registry};

async fn image(client: &Client, at: &Reference, text: &'static str) -> gantry_oci::Digest {
    let image = ScratchImage::build(
        &[ImageFile {
            path: "/app".into(),
            mode: 0o755,
            bytes: Bytes::from_static(text.as_bytes()),
        }],
        &ImageConfig::default(),
    )
    .expect("image");
    image.push(client, at).await.expect("push");
    image.digest().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_tag_goes_back_in_three_requests_and_referrers_stay() {
    for backend in [Backend::Distribution, Backend::Gantry] {
        let Some(registry) = Registry::start_on(backend, Auth::Anonymous) else {
            return;
        };
        let client = Client::plain_http(&registry.host()).expect("client");
        let tag: Reference = format!("{}/acme/billing:canary", registry.host())
            .parse()
            .expect("reference");
        let previous = image(&client, &tag, "#!/bin/sh\necho v1\n").await;
        let canary = image(&client, &tag, "#!/bin/sh\necho v2\n").await;
        // A referrer on the previous digest (a signature, an SBOM): it must stay.
        let subject = client
            .manifest(&tag.with_digest(previous.clone()))
            .await
            .expect("manifest");
        let artifact = Artifact {
            artifact_type: "application/vnd.example.sbom".into(),
            layers: vec![ArtifactLayer {
                media_type: "application/vnd.example.sbom".into(),
                bytes: Bytes::from_static(b"{}"),
                annotations: std::collections::BTreeMap::new(),
            }],
            subject: Some(subject.descriptor()),
            annotations: std::collections::BTreeMap::new(),
        };
        client
            .push_artifact(&tag.with_digest(previous.clone()), &artifact)
            .await
            .expect("referrer");
        let referrers_before = client
            .referrers(&tag.with_digest(previous.clone()), None)
            .await
            .expect("referrers")
            .descriptors;

        let kept = prepare(&client, &tag, &previous).await.expect("prepare");
        assert_eq!(kept.canary, canary);
        let rolled = roll_back(&client, &kept).await.expect("roll back");
        let RolledBack::Repointed { requests, .. } = rolled else {
            panic!("{backend:?}: {rolled:?}")
        };
        assert_eq!(requests, 3, "{backend:?}: read, put, read back");
        assert_eq!(
            client.resolve(&tag).await.expect("resolve").digest,
            previous,
            "{backend:?}"
        );
        let referrers_after = client
            .referrers(&tag.with_digest(previous.clone()), None)
            .await
            .expect("referrers")
            .descriptors;
        assert_eq!(referrers_before, referrers_after, "{backend:?}");

        // Someone promotes a newer canary meanwhile: the watch's rollback leaves it alone.
        let newer = image(&client, &tag, "#!/bin/sh\necho v3\n").await;
        let kept = canary_watch::rollback::Kept {
            canary: canary.clone(),
            ..kept
        };
        let superseded = roll_back(&client, &kept).await.expect("roll back");
        assert_eq!(superseded, RolledBack::Superseded { now: newer.clone() });
        assert_eq!(client.resolve(&tag).await.expect("resolve").digest, newer);
    }
}
