//! Without `--storage` the registry keeps blobs in a temporary directory, not in memory: pushing a
//! 128 MiB layer raises this process's peak memory by a small fraction of it (a 300 MiB blob once
//! cost 320 MB of RSS). Alone in its test binary, so no other test adds to the peak.

use bytes::Bytes;
use gantry_oci::Digest;
use sha2::Digest as _;

const LAYER: usize = 128 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;
const ALLOWED_GROWTH: u64 = 40 * 1024 * 1024;

fn chunk(i: usize) -> Bytes {
    Bytes::from(vec![u8::try_from(i % 251).unwrap_or(0); CHUNK])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_blob_is_spooled_to_disk_not_held_in_memory() {
    let registry = gantry_registry::start(gantry_registry::Config::default())
        .await
        .expect("start");
    let mut hasher = sha2::Sha256::new();
    for i in 0..LAYER / CHUNK {
        hasher.update(chunk(i));
    }
    let digest: Digest = format!("sha256:{:x}", hasher.finalize())
        .parse()
        .expect("digest");

    let memory = gantry_testkit::PeakMemory::start();
    let body =
        futures_util::stream::iter((0..LAYER / CHUNK).map(|i| Ok::<_, std::io::Error>(chunk(i))));
    let pushed = reqwest::Client::new()
        .post(format!(
            "http://{}/v2/big/app/blobs/uploads/?digest={digest}",
            registry.host()
        ))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("push");
    assert_eq!(pushed.status(), reqwest::StatusCode::CREATED);
    let head = reqwest::Client::new()
        .head(format!(
            "http://{}/v2/big/app/blobs/{digest}",
            registry.host()
        ))
        .send()
        .await
        .expect("head");
    assert_eq!(head.headers()["content-length"], LAYER.to_string().as_str());
    let growth = memory.growth();
    assert!(
        growth < ALLOWED_GROWTH,
        "pushing {LAYER} bytes raised peak memory by {growth} bytes (allowed {ALLOWED_GROWTH})"
    );
}
