//! gantry-registry speaks the distribution spec: its error codes, chunked uploads, pagination,
//! persistence, loopback default, and independent peers (skopeo) copying in and out.

mod conformance;
mod hardening;
mod peers;
mod spec;

use gantry_oci::Digest;
use gantry_registry::{Config, Running};
use reqwest::StatusCode;

pub async fn start() -> Running {
    gantry_registry::start(Config::default())
        .await
        .expect("start")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A chunk `body` sent with `PATCH` to the upload at `location`, with `Content-Range: range`.
pub async fn patch_chunk(
    location: &str,
    range: impl TryInto<reqwest::header::HeaderValue, Error: std::fmt::Debug>,
    body: &'static str,
) -> reqwest::Response {
    http()
        .patch(location)
        .header("content-range", range.try_into().expect("header value"))
        .body(body)
        .send()
        .await
        .expect("patch")
}

/// Uploads `bytes` to `repo` in one POST; its digest.
pub async fn upload(base: &str, repo: &str, bytes: &[u8]) -> Digest {
    let digest = Digest::sha256(bytes);
    let response = http()
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
        .body(bytes.to_vec())
        .send()
        .await
        .expect("monolithic upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    digest
}
