//! gantry-registry speaks the distribution spec: its error codes, chunked uploads, pagination,
//! persistence, loopback default, and independent peers (skopeo) copying in and out.

mod conformance;
mod hardening;
mod peers;
mod spec;

use gantry_registry::{Config, Running};

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
