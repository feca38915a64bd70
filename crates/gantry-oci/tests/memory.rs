//! A cross-registry copy streams blobs: moving a 128 MiB layer raises this process's peak memory
//! by a small fraction of it. Alone in its test binary, so no other test adds to the peak.

use bytes::Bytes;
use gantry_oci::manifest::OCI_LAYER_TAR;
use gantry_oci::{Client, ClientOptions, CopyOptions, Credentials, Reference};
use gantry_testkit::{Auth, Registry};

const LAYER: usize = 128 * 1024 * 1024;
const ALLOWED_GROWTH: u64 = 40 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_layer_is_streamed_not_buffered() {
    let Some(source) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let Some(target) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let client = Client::new(
        ClientOptions {
            plain_http: vec![source.host(), target.host()],
            ..ClientOptions::default()
        },
        Credentials::anonymous(),
    )
    .expect("client");
    let repo: Reference = format!("{}/big/app", source.host())
        .parse()
        .expect("reference");
    let layer: Bytes = (0..LAYER)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect::<Vec<u8>>()
        .into();
    client
        .push_image(
            &repo.with_tag("v1").expect("tag"),
            &Bytes::from_static(b"{}"),
            &[(OCI_LAYER_TAR, &layer)],
        )
        .await
        .expect("push image");
    drop(layer);

    // Reset the peak to the current resident size (Linux: "5" clears VmHWM).
    let memory = gantry_testkit::PeakMemory::start();
    let destination: Reference = format!("{}/mirror/app:v1", target.host())
        .parse()
        .expect("reference");
    let report = client
        .copy(
            &repo.with_tag("v1").expect("tag"),
            &destination,
            CopyOptions::default(),
        )
        .await
        .expect("copy");
    let growth = memory.growth();
    assert_eq!(report.blobs_uploaded, 2);
    assert!(
        report.counts.bytes_up >= LAYER as u64,
        "{:?}",
        report.counts
    );
    assert!(
        growth < ALLOWED_GROWTH,
        "copying a {} MiB layer grew the peak by {} MiB (allowed {} MiB): the blob was buffered",
        LAYER >> 20,
        growth >> 20,
        ALLOWED_GROWTH >> 20
    );
}
