//! Copies that keep digests, with the request counts that matter.

use gantry_oci::CopyOptions;
use gantry_testkit::{Auth, Registry};

use crate::support::{client_for, client_for_all, layer, push_image, push_index, reference};

on_both_backends!(async fn a_same_repository_retag_is_one_read_and_one_put(backend) {
    let Some(registry) = Registry::start_on(backend, Auth::Anonymous) else { return };
    let client = client_for(&registry);
    let image = push_image(&client, &reference(&registry, "team/app:dev"), &[b"layer"]).await;
    let before = client.requests().len();
    let report = client
        .copy(&reference(&registry, "team/app:dev"), &reference(&registry, "team/app:staging"), CopyOptions::default())
        .await
        .expect("retag");
    let requests: Vec<String> =
        client.requests()[before..].iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(requests, ["GET /v2/team/app/manifests/dev", "PUT /v2/team/app/manifests/staging"]);
    assert_eq!(report.counts.requests, 2);
    assert_eq!(report.digest.as_ref(), Some(&image.digest));
    let staging = client.resolve(&reference(&registry, "team/app:staging")).await.expect("resolve");
    assert_eq!(staging.digest, image.digest);
});

on_both_backends!(async fn a_cross_repository_copy_mounts_every_blob_and_uploads_no_bytes(backend) {
    let Some(registry) = Registry::start_on(backend, Auth::Bearer) else { return };
    let client = client_for(&registry);
    let layers: [&[u8]; 2] = [&layer("one", 300_000), &layer("two", 200_000)];
    let image = push_image(&client, &reference(&registry, "team/app:dev"), &layers).await;
    let report = client
        .copy(&reference(&registry, "team/app:dev"), &reference(&registry, "prod/app:live"), CopyOptions::default())
        .await
        .expect("copy");
    assert_eq!(report.blobs_mounted, 3, "config and two layers");
    assert_eq!(report.blobs_uploaded, 0);
    assert!(report.counts.bytes_up < 10_000, "only manifests go up: {:?}", report.counts);
    let copied = client.manifest(&reference(&registry, "prod/app:live")).await.expect("copied");
    assert_eq!(copied, image);
});

on_both_backends!(async fn a_cross_registry_copy_streams_blobs_and_keeps_an_index_intact(backend) {
    let Some(source) = Registry::start_on(backend, Auth::Basic) else { return };
    let Some(target) = Registry::start(Auth::Tls) else { return };
    let client = client_for_all(&[&source, &target]);
    let amd = push_image(&client, &reference(&source, "team/app"), &[&layer("amd", 1 << 20)]).await;
    let arm = push_image(&client, &reference(&source, "team/app"), &[&layer("arm", 1 << 20)]).await;
    let children = [(&amd, "amd64"), (&arm, "arm64")];
    let index = push_index(&client, &reference(&source, "team/app:v1"), &children).await;

    let report = client
        .copy(&reference(&source, "team/app:v1"), &reference(&target, "mirror/app:v1"), CopyOptions::default())
        .await
        .expect("copy");
    assert_eq!(report.blobs_uploaded, 3, "one shared config and two layers");
    assert_eq!(report.manifests_pushed, 4, "two children, the index by digest, then the tag");
    let copied = client.manifest(&reference(&target, "mirror/app:v1")).await.expect("index");
    assert_eq!(copied, index, "the index arrives byte for byte");
    for child in [&amd, &arm] {
        let at = reference(&target, "mirror/app").with_digest(child.digest.clone());
        assert_eq!(client.manifest(&at).await.expect("child").bytes, child.bytes);
    }

    let again = client
        .copy(&reference(&source, "team/app:v1"), &reference(&target, "mirror/app:v1"), CopyOptions::default())
        .await
        .expect("copy again");
    // Both platforms share the config blob, so four blob checks, every one a skip.
    assert_eq!((again.blobs_uploaded, again.blobs_present), (0, 4), "blobs already there are skipped");
    assert_eq!(again.manifests_pushed, 1, "only the tag is written again");
});

on_both_backends!(async fn legacy_cosign_tags_travel_with_a_cross_repository_copy(backend) {
    let Some(registry) = Registry::start_on(backend, Auth::Anonymous) else { return };
    let client = client_for(&registry);
    let image = push_image(&client, &reference(&registry, "team/app:dev"), &[b"x"]).await;
    // A cosign-style `.sig` manifest: an image whose layer is a simple-signing payload.
    let sig_tag = format!("{}.sig", image.digest.fallback_tag());
    let sig = push_image(&client, &reference(&registry, &format!("team/app:{sig_tag}")), &[b"{\"critical\":{}}"]).await;
    let report = client
        .copy(&reference(&registry, "team/app:dev"), &reference(&registry, "prod/app:live"), CopyOptions::default())
        .await
        .expect("copy");
    assert_eq!(report.legacy_tags, std::slice::from_ref(&sig_tag));
    let copied = client.resolve(&reference(&registry, &format!("prod/app:{sig_tag}"))).await.expect("sig tag");
    assert_eq!(copied.digest, sig.digest);

    let without = client
        .copy(
            &reference(&registry, "team/app:dev"),
            &reference(&registry, "bare/app:live"),
            CopyOptions { referrers: false, legacy_cosign_tags: false },
        )
        .await
        .expect("copy without");
    assert!(without.legacy_tags.is_empty());
    assert!(client.head_manifest(&reference(&registry, &format!("bare/app:{sig_tag}"))).await.expect("head").is_none());
});

#[tokio::test]
async fn a_mount_answered_with_202_continues_as_an_upload() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let proxy = gantry_testkit::FaultyProxy::start(&registry.host()).expect("proxy");
    let image = push_image(
        &client_for(&registry),
        &reference(&registry, "team/app:dev"),
        &[&layer("m", 50_000)],
    )
    .await;
    proxy.inject("POST", "mount=", gantry_testkit::Fault::DropQuery, 10);
    let options = gantry_oci::ClientOptions {
        plain_http: vec![proxy.host()],
        ..Default::default()
    };
    let client =
        gantry_oci::Client::new(options, gantry_oci::Credentials::anonymous()).expect("client");
    let at = |path: &str| -> gantry_oci::Reference {
        format!("{}/{path}", proxy.host())
            .parse()
            .expect("reference")
    };
    let report = client
        .copy(
            &at("team/app:dev"),
            &at("prod/app:live"),
            CopyOptions::default(),
        )
        .await
        .expect("copy");
    assert_eq!(
        (report.blobs_mounted, report.blobs_uploaded),
        (0, 2),
        "both mounts became uploads"
    );
    let downgraded = proxy
        .log()
        .iter()
        .filter(|l| l.ends_with("-> 202 (DropQuery)"))
        .count();
    assert_eq!(downgraded, 2, "{:?}", proxy.log());
    assert_eq!(
        client.manifest(&at("prod/app:live")).await.expect("copied"),
        image
    );
}
