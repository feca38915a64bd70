//! Images built by umoci from a real root filesystem, three layers with real whiteouts, pushed by
//! skopeo to CNCF distribution and to gantry-registry, catalogued from the registry.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gantry_oci::{Client, Reference};
use gantry_testkit::peers::{Peers, run};
use gantry_testkit::{Auth, Backend, Registry};
use serde_json::Value;

use crate::common::{components, purls, subject, tool, validate};

/// The layout (tag `app`) and the final tree umoci unpacks from it, built once beside the
/// root filesystems (a statics' temporary directory would never be removed) and reused.
pub struct Built {
    pub layout: PathBuf,
    pub unpacked: PathBuf,
}

pub fn built() -> Option<&'static Built> {
    static BUILT: OnceLock<Option<Built>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let lang = gantry_testkit::component::sbom_rootfs("lang")?;
            let peers = Peers::find()?;
            let dir = lang.parent().expect("fixtures").join("layered");
            if !dir.join(".complete").exists() {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("mkdir");
                build(&peers, &lang, &dir);
                std::fs::write(dir.join(".complete"), b"").expect("stamp");
            }
            let built = Built {
                layout: dir.join("layout"),
                unpacked: dir.join("final/rootfs"),
            };
            assert_three_layers_with_whiteouts(&built.layout);
            Some(built)
        })
        .as_ref()
}

/// The image must really be three layers, the upper ones with whiteouts (umoci without
/// `--refresh-bundle` silently writes one full layer per repack instead).
fn assert_three_layers_with_whiteouts(layout: &Path) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(blob(
            index["manifests"][0]["digest"].as_str().expect("digest"),
        ))
        .expect("manifest"),
    )
    .expect("json");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 3, "three layers: {manifest}");
    for layer in &layers[1..] {
        let file =
            std::fs::File::open(blob(layer["digest"].as_str().expect("digest"))).expect("layer");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let whiteouts = archive
            .entries()
            .expect("entries")
            .filter_map(Result::ok)
            .filter(|e| {
                e.path().is_ok_and(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(".wh."))
                })
            })
            .count();
        assert!(whiteouts > 0, "layer {} has no whiteouts", layer["digest"]);
    }
}

fn sh(script: &str) {
    let status = std::process::Command::new("sh")
        .args(["-ec", script])
        .status()
        .expect("sh");
    assert!(status.success(), "{script}");
}

/// Layer 1: the `lang` rootfs. Layer 2: deletes `ms@2.1.3`, the Go binary and a Debian
/// package's egg-info (whiteouts), adds left-pad. Layer 3: deletes `/srv/app/lib` (the copied
/// jar) and puts a new file where a directory was.
fn build(peers: &Peers, lang: &Path, dir: &Path) {
    let layout = dir.join("layout");
    let image = format!("{}:app", layout.display());
    let bundle = dir.join("bundle");
    let (l, b) = (
        layout.to_str().expect("utf8"),
        bundle.to_str().expect("utf8"),
    );
    run(&peers.umoci, &["init", "--layout", l]);
    run(&peers.umoci, &["new", "--image", &image]);
    run(
        &peers.umoci,
        &["unpack", "--rootless", "--image", &image, b],
    );
    sh(&format!("cp -a {}/. {b}/rootfs/", lang.display()));
    run(
        &peers.umoci,
        &["repack", "--refresh-bundle", "--image", &image, b],
    );
    sh(&format!(
        "cd {b}/rootfs && rm -rf srv/app/node_modules/ms usr/local/bin/hello && \
         mkdir -p srv/app/node_modules/left-pad && \
         printf '{{\"name\":\"left-pad\",\"version\":\"1.3.0\",\"license\":\"WTFPL\"}}' > srv/app/node_modules/left-pad/package.json"
    ));
    run(
        &peers.umoci,
        &["repack", "--refresh-bundle", "--image", &image, b],
    );
    sh(&format!(
        "cd {b}/rootfs && rm -rf srv/app/lib && printf x > srv/app/lib"
    ));
    run(
        &peers.umoci,
        &["repack", "--refresh-bundle", "--image", &image, b],
    );
    let unpacked = dir.join("final");
    run(
        &peers.umoci,
        &[
            "unpack",
            "--rootless",
            "--image",
            &image,
            unpacked.to_str().expect("utf8"),
        ],
    );
    std::fs::remove_dir_all(&bundle).expect("removing the bundle");
}

fn body(sbom: &[u8]) -> (Value, Value) {
    let json: Value = serde_json::from_slice(sbom).expect("json");
    (
        json["components"].clone(),
        json["dependencies"].as_array().expect("deps")[1..]
            .to_vec()
            .into(),
    )
}

async fn catalogue(
    registry: &Registry,
    path: &str,
    jobs: usize,
) -> (Vec<u8>, gantry_sbom::Inventory) {
    let client = Client::plain_http(&registry.host()).expect("client");
    let reference: Reference = format!("{}/{path}", registry.host())
        .parse()
        .expect("reference");
    let manifest = client.manifest(&reference).await.expect("manifest");
    let found = gantry_sbom::catalog_image(
        &client,
        &reference,
        &manifest,
        gantry_sbom::ImageOptions {
            jobs,
            ..Default::default()
        },
    )
    .await
    .expect("cataloguing the image");
    let subject = gantry_sbom::Subject {
        kind: "container",
        name: reference.name(),
        version: Some(manifest.digest.to_string()),
        purl: None,
        created: found.created.clone(),
    };
    (
        gantry_sbom::write(&found.inventory, &subject, &tool()),
        found.inventory,
    )
}

async fn layers_read_from_the_registry_match_the_unpacked_image(backend: Backend) {
    let Some(built) = built() else { return };
    let Some(peers) = Peers::find() else { return };
    let Some(registry) = Registry::start_on(backend, Auth::Anonymous) else {
        return;
    };
    peers.push(
        &registry,
        &format!("oci:{}:app", built.layout.display()),
        "acme/app:gzip",
        &[],
    );
    let (sbom, inventory) = catalogue(&registry, "acme/app:gzip", 3).await;
    assert!(validate(&sbom) || !gantry_testkit::in_ci());
    // what the registry's layers say is what the unpacked final tree holds
    let tree = gantry_sbom::write(
        &gantry_sbom::catalog_rootfs(&built.unpacked).expect("rootfs"),
        &subject(),
        &tool(),
    );
    let (components_layers, deps_layers) = body(&sbom);
    let (components_tree, deps_tree) = body(&tree);
    assert_eq!(
        components_layers, components_tree,
        "components differ between layers and the unpacked tree"
    );
    assert_eq!(deps_layers, deps_tree);
    // the whiteouts took effect
    let json: Value = serde_json::from_slice(&sbom).expect("json");
    let all = purls(&json);
    for gone in [
        "pkg:npm/ms@2.1.3",
        "pkg:golang/example.com/gantry/hello",
        "pkg:golang/stdlib@1.19.8",
    ] {
        assert!(!all.contains(gone), "{gone} was deleted by a whiteout");
    }
    assert!(all.contains("pkg:npm/left-pad@1.3.0") && all.contains("pkg:npm/ms@2.1.2"));
    assert!(
        components(&json).all(|c| c["evidence"]["occurrences"]
            != serde_json::json!([{"location": "/srv/app/lib/commons-lang3.jar"}])),
        "the jar under the deleted /srv/app/lib is gone"
    );
    assert!(inventory.packages.len() > 600);
    // the same image, read with one layer at a time: byte-identical
    let (serial, _) = catalogue(&registry, "acme/app:gzip", 1).await;
    assert!(
        serial == sbom,
        "the SBOM depends on how many layers stream at once"
    );
    // the same content with zstd layers: the same components and graph
    // (skopeo recompresses only uncompressed layers, and only when no cached compressed copy
    // can be reused: decompressed into `dir:`, recompressed into a layout, pushed as it is)
    let work = tempfile::tempdir().expect("tempdir");
    let (plain, zstd_layout) = (work.path().join("plain"), work.path().join("zstd"));
    run(
        &peers.skopeo,
        &[
            "copy",
            "--quiet",
            "--dest-decompress",
            &format!("oci:{}:app", built.layout.display()),
            &format!("dir:{}", plain.display()),
        ],
    );
    run(
        &peers.skopeo,
        &[
            "copy",
            "--quiet",
            "--format",
            "oci",
            "--dest-compress-format",
            "zstd",
            &format!("dir:{}", plain.display()),
            &format!("oci:{}:app", zstd_layout.display()),
        ],
    );
    // (a registry of its own: skopeo's blob cache would swap in the gzip blobs it knows are there)
    let Some(second) = Registry::start_on(backend, Auth::Anonymous) else {
        return;
    };
    peers.push(
        &second,
        &format!("oci:{}:app", zstd_layout.display()),
        "acme/app:zstd",
        &[],
    );
    let zstd_manifest = peers.inspect_raw(&second, "acme/app:zstd");
    assert!(
        String::from_utf8_lossy(&zstd_manifest).contains("tar+zstd"),
        "the layers are zstd"
    );
    let (zstd, _) = catalogue(&second, "acme/app:zstd", 3).await;
    validate(&zstd);
    assert!(zstd != sbom, "a different image digest");
    let (components_zstd, deps_zstd) = body(&zstd);
    assert_eq!(components_zstd, components_layers);
    assert_eq!(deps_zstd, deps_layers);
    let names: BTreeSet<&str> = components(&json)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains("uv"));
}

#[tokio::test]
async fn layers_from_distribution_match_the_unpacked_image() {
    layers_read_from_the_registry_match_the_unpacked_image(Backend::Distribution).await;
}

#[tokio::test]
async fn layers_from_gantry_registry_match_the_unpacked_image() {
    layers_read_from_the_registry_match_the_unpacked_image(Backend::Gantry).await;
}
