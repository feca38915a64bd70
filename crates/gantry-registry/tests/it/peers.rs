//! skopeo copies images into and out of gantry-registry with their digests intact.

use std::process::Command;

use gantry_oci::Digest;
use gantry_testkit::require;

fn run(program: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program).args(args).output().expect("run");
    assert!(
        output.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

// Multi-threaded: the registry serves on this runtime while the test blocks on skopeo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_in_and_out() {
    let Some(skopeo) = require("skopeo", "apt-get install skopeo") else {
        return;
    };
    let Some(umoci) = require("umoci", "apt-get install umoci") else {
        return;
    };
    let registry = crate::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    let layout_s = layout.to_str().expect("utf8");
    run(&umoci, &["init", "--layout", layout_s]);
    run(&umoci, &["new", "--image", &format!("{layout_s}:v1")]);
    let bundle = dir.path().join("bundle");
    let bundle_s = bundle.to_str().expect("utf8");
    run(
        &umoci,
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{layout_s}:v1"),
            bundle_s,
        ],
    );
    std::fs::write(bundle.join("rootfs/app.txt"), "v1\n").expect("write");
    run(
        &umoci,
        &["repack", "--image", &format!("{layout_s}:v1"), bundle_s],
    );

    let remote = format!("docker://{}/team/app:v1", registry.host());
    for format in ["oci", "v2s2"] {
        run(
            &skopeo,
            &[
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                &format!("--format={format}"),
                &format!("oci:{layout_s}:v1"),
                &remote,
            ],
        );
        let raw = run(
            &skopeo,
            &["inspect", "--raw", "--tls-verify=false", &remote],
        );
        let out = dir.path().join(format!("out-{format}"));
        run(
            &skopeo,
            &[
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--preserve-digests",
                &remote,
                &format!("oci:{}:v1", out.display()),
            ],
        );
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("index.json")).expect("index"))
                .expect("json");
        assert_eq!(
            index["manifests"][0]["digest"],
            Digest::sha256(&raw).as_str(),
            "{format}: the same manifest came out"
        );
    }
}
