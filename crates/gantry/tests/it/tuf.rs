//! verify-image with the trusted root fetched by TUF from a repository python-tuf wrote and
//! serves: verified from the root.json the user trusts, cached, served offline from the verified
//! cache, and refused when the repository cannot prove the root.

use std::path::Path;
use std::process::Output;

use gantry_oci::Reference;
use gantry_testkit::peers::{MockSigstore, SIGNER_IDENTITY, SIGNER_ISSUER};
use gantry_testkit::tuf::TufRepository;
use gantry_testkit::{Auth, Registry};

use crate::signing::{push, sign, text};
use crate::{gantry, json};

/// verify-image for `image` by the signer's identity, the root fetched as `tuf` says.
fn verify(registry: &Registry, image: &Reference, tuf: &[&str]) -> Output {
    let (image, host) = (image.to_string(), registry.host());
    let mut args = vec![
        "verify-image",
        "--image",
        &image,
        "--certificate-identity",
        SIGNER_IDENTITY,
        "--certificate-oidc-issuer",
        SIGNER_ISSUER,
        "--insecure-registry",
        &host,
        "--json",
    ];
    args.extend_from_slice(tuf);
    gantry(&args)
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

#[track_caller]
fn refused(output: &Output, expected: &str) {
    let said = text(output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains(expected), "expected {expected:?} in: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trusted_root_comes_from_tuf_verified_cached_and_offline() {
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let Some(mut repository) = TufRepository::serve(&[&services.trusted_root], 7) else {
        return;
    };
    let image = push(&registry, "billing").await;
    let bundles = tempfile::tempdir().expect("tempdir");
    let output = sign(&registry, &services, &image, bundles.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let cache = tempfile::tempdir().expect("tempdir");
    let (url, root) = (repository.url.clone(), repository.root.clone());
    let tuf = [
        "--tuf-url",
        &url,
        "--tuf-root",
        utf8(&root),
        "--tuf-cache",
        utf8(cache.path()),
    ];

    // The mock's root is known only through the repository: proven through it.
    let output = verify(&registry, &image, &tuf);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(json(&output)["outputs"]["verified"], "true");
    assert!(
        cache.path().join("timestamp.json").is_file(),
        "verified metadata is cached in {}",
        cache.path().display()
    );

    // Offline: the verified cache, and not one request (the repository is gone).
    repository.stop();
    let offline = [&tuf[..], &["--tuf-offline"]].concat();
    let output = verify(&registry, &image, &offline);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let online = verify(&registry, &image, &tuf);
    refused(&online, "TUF repository load failed");

    // Offline with nothing cached has nothing to prove the root with.
    let empty = tempfile::tempdir().expect("tempdir");
    let output = verify(
        &registry,
        &image,
        &[
            "--tuf-url",
            &url,
            "--tuf-root",
            utf8(&root),
            "--tuf-cache",
            utf8(empty.path()),
            "--tuf-offline",
        ],
    );
    refused(&output, "from the cache (offline)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_the_repository_cannot_prove_is_refused() {
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let Some(repository) = TufRepository::serve(&[&services.trusted_root], 7) else {
        return;
    };
    let Some(stranger) = TufRepository::serve(&[&services.trusted_root], 7) else {
        return;
    };
    let Some(expired) = TufRepository::serve(&[&services.trusted_root], -1) else {
        return;
    };
    let image = push(&registry, "billing").await;
    let bundles = tempfile::tempdir().expect("tempdir");
    let output = sign(&registry, &services, &image, bundles.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let with = |url: &str, root: &Path| -> Output {
        let cache = tempfile::tempdir().expect("tempdir");
        verify(
            &registry,
            &image,
            &[
                "--tuf-url",
                url,
                "--tuf-root",
                utf8(root),
                "--tuf-cache",
                utf8(cache.path()),
            ],
        )
    };

    // Metadata signed by keys the trusted root does not name.
    refused(
        &with(&repository.url, &stranger.root),
        "signature threshold not met for role timestamp",
    );
    // Metadata past its expiry.
    refused(&with(&expired.url, &expired.root), "root metadata expired");
    // A repository gantry has no root for, and none given: refused before any request.
    let output = verify(&registry, &image, &["--tuf-url", &repository.url]);
    refused(
        &output,
        "give the root.json to trust for this one (tuf-root)",
    );
    // A file root and a TUF repository are two answers to one question.
    let output = verify(
        &registry,
        &image,
        &[
            "--tuf-url",
            &repository.url,
            "--trusted-root",
            utf8(&services.trusted_root),
        ],
    );
    refused(&output, "--tuf-url");

    // A target changed after it was signed for: same length, one key byte different.
    let target = repository.target_file("trusted_root.json");
    let tampered = std::fs::read_to_string(&target)
        .expect("target")
        .replacen("MF", "MG", 1);
    std::fs::write(&target, tampered).expect("tamper");
    refused(
        &with(&repository.url, &repository.root),
        "trusted_root.json: sha256 mismatch",
    );
    // Another instance's root in its place: longer than the length signed for.
    std::fs::write(
        &target,
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../gantry-sigstore/conformance/production-trusted_root.json"),
        )
        .expect("production root"),
    )
    .expect("tamper");
    refused(&with(&repository.url, &repository.root), "exceeds");
}
