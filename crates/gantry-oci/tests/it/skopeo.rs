//! skopeo and umoci as independent peers: what they push, gantry reads and copies with unchanged
//! digests; what gantry writes, skopeo reads back byte for byte.

use gantry_oci::manifest::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use gantry_oci::{CopyOptions, Digest};
use gantry_testkit::peers::{Peers, run};
use gantry_testkit::{Auth, Registry};

use crate::support::{client_for, reference};

#[tokio::test]
async fn images_pushed_by_skopeo_copy_with_unchanged_digests() {
    let Some(peers) = Peers::find() else { return };
    let Some(registry) = Registry::start(Auth::Basic) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = peers.build_layout(dir.path());
    let layout = layout.to_str().expect("utf8");
    peers.push(&registry, &format!("oci:{layout}:amd"), "peer/oci:v1", &[]);
    peers.push(
        &registry,
        &format!("oci:{layout}:amd"),
        "peer/docker:v1",
        &["--format=v2s2"],
    );
    peers.push(
        &registry,
        &format!("oci:{layout}:multi"),
        "peer/multi:v1",
        &["--all"],
    );

    let client = client_for(&registry);
    for (path, media_type) in [
        ("peer/oci", OCI_MANIFEST),
        ("peer/docker", DOCKER_MANIFEST),
        ("peer/multi", OCI_INDEX),
    ] {
        let pushed = peers.inspect_raw(&registry, &format!("{path}:v1"));
        let source = reference(&registry, &format!("{path}:v1"));
        let resolved = client.resolve(&source).await.expect("resolve");
        assert_eq!(
            resolved.digest,
            Digest::sha256(&pushed),
            "{path}: gantry resolves the digest skopeo pushed"
        );
        assert_eq!(resolved.media_type, media_type, "{path}");

        let target_path = format!("copied/{}", path.trim_start_matches("peer/"));
        client
            .copy(
                &source,
                &reference(&registry, &format!("{target_path}:v1")),
                CopyOptions::default(),
            )
            .await
            .expect("copy");
        let copied = peers.inspect_raw(&registry, &format!("{target_path}:v1"));
        assert_eq!(copied, pushed, "{path}: skopeo reads back the same bytes");
    }
    // The platform manifests arrived too: skopeo can copy the whole index out again.
    let out = dir.path().join("out");
    let mut args = vec![
        "copy".to_owned(),
        "--quiet".to_owned(),
        "--all".to_owned(),
        "--src-tls-verify=false".to_owned(),
    ];
    let (user, pass) = registry.credentials().expect("creds");
    args.push(format!("--src-creds={user}:{pass}"));
    args.push(format!("docker://{}/copied/multi:v1", registry.host()));
    args.push(format!("oci:{}:multi", out.display()));
    run(
        &peers.skopeo,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[tokio::test]
async fn artifacts_gantry_writes_read_back_in_skopeo() {
    let Some(peers) = Peers::find() else { return };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let image =
        crate::support::push_image(&client, &reference(&registry, "team/app:v1"), &[b"layer"])
            .await;
    let artifact = gantry_oci::Artifact {
        artifact_type: "application/vnd.example+json".into(),
        layers: vec![gantry_oci::ArtifactLayer {
            media_type: "application/vnd.example+json".into(),
            bytes: bytes::Bytes::from_static(b"{}"),
            annotations: std::collections::BTreeMap::new(),
        }],
        subject: Some(image.descriptor()),
        annotations: std::collections::BTreeMap::new(),
    };
    let pushed = client
        .push_artifact(&reference(&registry, "team/app"), &artifact)
        .await
        .expect("push");
    let raw = peers.inspect_raw(&registry, &format!("team/app@{}", pushed.digest));
    assert_eq!(Digest::sha256(&raw), pushed.digest);
    let fallback = peers.inspect_raw(
        &registry,
        &format!("team/app:{}", image.digest.fallback_tag()),
    );
    let index: serde_json::Value = serde_json::from_slice(&fallback).expect("index");
    assert_eq!(index["manifests"][0]["digest"], pushed.digest.as_str());
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.example+json"
    );
}
