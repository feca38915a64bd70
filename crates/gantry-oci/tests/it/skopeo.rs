//! skopeo and umoci as independent peers: what they push, gantry reads and copies with unchanged
//! digests; what gantry writes, skopeo reads back byte for byte.

use std::path::Path;
use std::process::Command;

use gantry_oci::manifest::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use gantry_oci::{CopyOptions, Digest};
use gantry_testkit::{Auth, Registry, require};
use serde_json::json;

use crate::support::{client_for, reference};

fn run(program: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program).args(args).output().expect("run peer");
    assert!(
        output.status.success(),
        "{} {}: {}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

struct Peers {
    skopeo: std::path::PathBuf,
    umoci: std::path::PathBuf,
}

fn peers() -> Option<Peers> {
    Some(Peers {
        skopeo: require("skopeo", "apt-get install skopeo")?,
        umoci: require("umoci", "apt-get install umoci")?,
    })
}

/// An OCI layout at `dir` with images `amd` and `arm` built by umoci, and an index `multi` over
/// both written into the layout by hand.
fn build_layout(peers: &Peers, dir: &Path) {
    let layout = dir.join("layout");
    let layout_s = layout.to_str().expect("utf8");
    run(&peers.umoci, &["init", "--layout", layout_s]);
    for (tag, content) in [("amd", "built for amd64\n"), ("arm", "built for arm64\n")] {
        let image = format!("{layout_s}:{tag}");
        run(&peers.umoci, &["new", "--image", &image]);
        let bundle = dir.join(format!("bundle-{tag}"));
        let bundle_s = bundle.to_str().expect("utf8");
        run(
            &peers.umoci,
            &["unpack", "--rootless", "--image", &image, bundle_s],
        );
        std::fs::write(bundle.join("rootfs/hello.txt"), content).expect("write file");
        run(&peers.umoci, &["repack", "--image", &image, bundle_s]);
    }
    let mut top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("json");
    let mut children = Vec::new();
    for entry in top["manifests"].as_array().expect("manifests") {
        let name = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or_default();
        let arch = if name == "amd" { "amd64" } else { "arm64" };
        children.push(json!({"mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"], "platform": {"os": "linux", "architecture": arch}}));
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}),
    )
    .expect("json");
    let digest = Digest::sha256(&index);
    std::fs::write(layout.join("blobs/sha256").join(digest.hex()), &index)
        .expect("write index blob");
    top["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(json!({
            "mediaType": OCI_INDEX, "digest": digest, "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"}
        }));
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&top).expect("json"),
    )
    .expect("write index.json");
}

fn inspect_raw(peers: &Peers, registry: &Registry, path: &str) -> Vec<u8> {
    let mut args = vec![
        "inspect".to_owned(),
        "--raw".to_owned(),
        "--tls-verify=false".to_owned(),
    ];
    if let Some((user, pass)) = registry.credentials() {
        args.push(format!("--creds={user}:{pass}"));
    }
    args.push(format!("docker://{}/{path}", registry.host()));
    run(
        &peers.skopeo,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

fn skopeo_push(peers: &Peers, registry: &Registry, source: &str, path: &str, extra: &[&str]) {
    let mut args = vec![
        "copy".to_owned(),
        "--quiet".to_owned(),
        "--dest-tls-verify=false".to_owned(),
    ];
    if let Some((user, pass)) = registry.credentials() {
        args.push(format!("--dest-creds={user}:{pass}"));
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(source.to_owned());
    args.push(format!("docker://{}/{path}", registry.host()));
    run(
        &peers.skopeo,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[tokio::test]
async fn images_pushed_by_skopeo_copy_with_unchanged_digests() {
    let Some(peers) = peers() else { return };
    let Some(registry) = Registry::start(Auth::Basic) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    build_layout(&peers, dir.path());
    let layout = dir.path().join("layout");
    let layout = layout.to_str().expect("utf8");
    skopeo_push(
        &peers,
        &registry,
        &format!("oci:{layout}:amd"),
        "peer/oci:v1",
        &[],
    );
    skopeo_push(
        &peers,
        &registry,
        &format!("oci:{layout}:amd"),
        "peer/docker:v1",
        &["--format=v2s2"],
    );
    skopeo_push(
        &peers,
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
        let pushed = inspect_raw(&peers, &registry, &format!("{path}:v1"));
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
        let copied = inspect_raw(&peers, &registry, &format!("{target_path}:v1"));
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
    let Some(peers) = peers() else { return };
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
    let raw = inspect_raw(&peers, &registry, &format!("team/app@{}", pushed.digest));
    assert_eq!(Digest::sha256(&raw), pushed.digest);
    let fallback = inspect_raw(
        &peers,
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
