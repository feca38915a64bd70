use gantry_oci::manifest::OCI_MANIFEST;
use gantry_oci::{Client, Digest, Reference};
use gantry_registry::{Config, ServeError};
use reqwest::StatusCode;
use serde_json::json;

use crate::{error_code, http, patch_chunk, start, upload};

#[tokio::test]
async fn manifests_are_refused_until_their_blobs_exist_and_must_match_their_digest() {
    let registry = start().await;
    let base = format!("http://{}", registry.host());
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = Digest::sha256(config);
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": []
    })
    .to_string();
    let put = |reference: String, body: String, content_type: &'static str| {
        let url = format!("{base}/v2/team/app/manifests/{reference}");
        async move {
            http()
                .put(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("put")
        }
    };
    let missing = put("v1".into(), manifest.clone(), OCI_MANIFEST).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(missing).await, "MANIFEST_BLOB_UNKNOWN");

    upload(&base, "team/app", config).await;
    let wrong = Digest::sha256(b"something else");
    let mismatch = put(wrong.to_string(), manifest.clone(), OCI_MANIFEST).await;
    assert_eq!(error_code(mismatch).await, "DIGEST_INVALID");
    let bad_type = put("v1".into(), manifest.clone(), "application/json").await;
    assert_eq!(error_code(bad_type).await, "MANIFEST_INVALID");
    let bad_tag = put("-bad".into(), manifest.clone(), OCI_MANIFEST).await;
    assert_eq!(error_code(bad_tag).await, "TAG_INVALID");

    let ok = put("v1".into(), manifest.clone(), OCI_MANIFEST).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let expected = Digest::sha256(manifest.as_bytes());
    assert_eq!(ok.headers()["docker-content-digest"], expected.as_str());
    assert!(
        !ok.headers().contains_key("oci-subject"),
        "no subject, no OCI-Subject header"
    );

    let unknown = http()
        .get(format!("{base}/v2/team/app/manifests/v2"))
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(unknown).await, "MANIFEST_UNKNOWN");
    let bad_name = http()
        .get(format!("{base}/v2/Team/App/manifests/v1"))
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(bad_name).await, "NAME_INVALID");
}

#[tokio::test]
async fn chunked_uploads_check_ranges_and_digests() {
    let registry = start().await;
    let base = format!("http://{}", registry.host());
    let started = http()
        .post(format!("{base}/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = format!(
        "{base}{}",
        started.headers()["location"].to_str().expect("location")
    );

    let first = patch_chunk(&location, "0-4", "hello").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(first.headers()["range"], "0-4");
    let gap = patch_chunk(&location, "9-14", "world!").await;
    assert_eq!(gap.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let second = patch_chunk(&location, "5-10", " world").await;
    assert_eq!(second.headers()["range"], "0-10");

    let wrong = Digest::sha256(b"hello");
    let refused = http()
        .put(format!("{location}?digest={wrong}"))
        .send()
        .await
        .expect("put");
    assert_eq!(error_code(refused).await, "DIGEST_INVALID");
    let gone = http().get(&location).send().await.expect("status");
    assert_eq!(
        error_code(gone).await,
        "BLOB_UPLOAD_UNKNOWN",
        "a failed upload is discarded"
    );

    // Again, correctly, with the last chunk in the PUT.
    let started = http()
        .post(format!("{base}/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .expect("start");
    let location = format!(
        "{base}{}",
        started.headers()["location"].to_str().expect("location")
    );
    http()
        .patch(&location)
        .body("hello")
        .send()
        .await
        .expect("patch");
    let digest = Digest::sha256(b"hello world");
    let done = http()
        .put(format!("{location}?digest={digest}"))
        .body(" world")
        .send()
        .await
        .expect("put");
    assert_eq!(done.status(), StatusCode::CREATED);
    let blob = http()
        .get(format!("{base}/v2/team/app/blobs/{digest}"))
        .send()
        .await
        .expect("get");
    assert_eq!(blob.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(blob.bytes().await.expect("bytes"), "hello world");
    let elsewhere = http()
        .get(format!("{base}/v2/other/app/blobs/{digest}"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        error_code(elsewhere).await,
        "BLOB_UNKNOWN",
        "blobs belong to the repositories that have them"
    );
}

#[tokio::test]
async fn mounts_link_blobs_and_fall_back_to_an_upload() {
    let registry = start().await;
    let base = format!("http://{}", registry.host());
    let digest = upload(&base, "team/app", b"shared layer").await;
    let mounted = http()
        .post(format!(
            "{base}/v2/prod/app/blobs/uploads/?mount={digest}&from=team/app"
        ))
        .send()
        .await
        .expect("mount");
    assert_eq!(mounted.status(), StatusCode::CREATED);
    let there = http()
        .head(format!("{base}/v2/prod/app/blobs/{digest}"))
        .send()
        .await
        .expect("head");
    assert_eq!(there.status(), StatusCode::OK);
    let not_mountable = http()
        .post(format!(
            "{base}/v2/prod/app/blobs/uploads/?mount={digest}&from=nobody/here"
        ))
        .send()
        .await
        .expect("mount");
    assert_eq!(
        not_mountable.status(),
        StatusCode::ACCEPTED,
        "202: a normal upload instead"
    );
    assert!(not_mountable.headers().contains_key("location"));
}

#[tokio::test]
async fn tags_are_paginated_with_link_headers() {
    let registry = start().await;
    let host = registry.host();
    let client = Client::plain_http(&host).expect("client");
    let repo: Reference = format!("{host}/team/app").parse().expect("reference");
    let config = bytes::Bytes::from_static(b"{}");
    let config_digest = Digest::sha256(&config);
    client
        .upload_blob(&repo, &config_digest, config)
        .await
        .expect("config");
    let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2}, "layers": []});
    let manifest = gantry_oci::Manifest::from_json(&body, OCI_MANIFEST);
    for tag in ["a", "b", "c", "d", "e"] {
        client
            .put_manifest(&repo.with_tag(tag).expect("tag"), &manifest)
            .await
            .expect("tag");
    }
    let page = http()
        .get(format!("http://{host}/v2/team/app/tags/list?n=2"))
        .send()
        .await
        .expect("page");
    let link = page.headers()["link"].to_str().expect("link").to_owned();
    assert_eq!(link, "</v2/team/app/tags/list?n=2&last=b>; rel=\"next\"");
    let body: serde_json::Value = page.json().await.expect("json");
    assert_eq!(body["tags"], json!(["a", "b"]));
    assert_eq!(
        client.tags(&repo).await.expect("all tags"),
        ["a", "b", "c", "d", "e"],
        "gantry-oci follows the links"
    );
    let unknown = http()
        .get(format!("http://{host}/v2/nobody/tags/list"))
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(unknown).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn content_survives_a_restart_with_disk_storage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        storage: Some(dir.path().to_owned()),
        ..Config::default()
    };
    let first = gantry_registry::start(config.clone()).await.expect("start");
    let base = format!("http://{}", first.host());
    let digest = upload(&base, "team/app", b"kept on disk").await;
    first.stop().await;
    let second = gantry_registry::start(config).await.expect("restart");
    let blob = http()
        .get(format!(
            "http://{}/v2/team/app/blobs/{digest}",
            second.host()
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(blob.bytes().await.expect("bytes"), "kept on disk");
}

#[tokio::test]
async fn it_refuses_to_listen_beyond_loopback_unless_told() {
    let config = Config {
        addr: "0.0.0.0:0".parse().expect("addr"),
        ..Config::default()
    };
    let err = gantry_registry::start(config).await.err().expect("refused");
    assert!(matches!(err, ServeError::NotLoopback { .. }));
    assert!(err.to_string().contains("--allow-remote"), "{err}");
}

#[tokio::test]
async fn referrers_are_paged_and_the_client_follows_every_page() {
    let registry = gantry_registry::start(Config {
        page_size: 2,
        ..Config::default()
    })
    .await
    .expect("start");
    let host = registry.host();
    let client = Client::plain_http(&host).expect("client");
    let repo: Reference = format!("{host}/team/app").parse().expect("reference");
    let subject = client
        .push_artifact(
            &repo,
            &artifact("application/vnd.example.subject", None, "subject"),
        )
        .await
        .expect("subject");
    let mut pushed = Vec::new();
    for i in 0..5 {
        let kind = if i % 2 == 0 {
            "application/vnd.example.sbom+json"
        } else {
            "application/vnd.example.sig"
        };
        let referrer = client
            .push_artifact(&repo, &artifact(kind, Some(&subject), &i.to_string()))
            .await
            .expect("referrer");
        pushed.push(referrer.digest);
    }
    let first_page = http()
        .get(format!(
            "http://{host}/v2/team/app/referrers/{}",
            subject.digest
        ))
        .send()
        .await
        .expect("get");
    assert!(
        first_page.headers().contains_key("link"),
        "more than a page: a Link header"
    );
    let all = client
        .referrers(&repo.with_digest(subject.digest.clone()), None)
        .await
        .expect("all referrers");
    let mut found: Vec<Digest> = all.descriptors.into_iter().map(|d| d.digest).collect();
    found.sort();
    pushed.sort();
    assert_eq!(found, pushed, "every page was read");
    let sboms = client
        .referrers(
            &repo.with_digest(subject.digest.clone()),
            Some("application/vnd.example.sbom+json"),
        )
        .await
        .expect("filtered");
    // A `+` in the type must survive the `Link` the registry hands out (it once came back as a
    // space: page two was empty).
    assert_eq!(sboms.descriptors.len(), 3, "the filter holds across pages");
}

fn artifact(
    kind: &str,
    subject: Option<&gantry_oci::Manifest>,
    text: &str,
) -> gantry_oci::Artifact {
    gantry_oci::Artifact {
        artifact_type: kind.to_owned(),
        layers: vec![gantry_oci::ArtifactLayer {
            media_type: "application/json".to_owned(),
            bytes: bytes::Bytes::from(format!("{{\"n\":\"{text}\"}}")),
            annotations: std::collections::BTreeMap::new(),
        }],
        subject: subject.map(gantry_oci::Manifest::descriptor),
        annotations: std::collections::BTreeMap::new(),
    }
}

#[tokio::test]
async fn a_manifest_over_4_mib_is_refused_with_size_invalid() {
    let registry = start().await;
    let body = format!(
        "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let response = http()
        .put(format!(
            "http://{}/v2/team/app/manifests/big",
            registry.host()
        ))
        .header("content-type", OCI_MANIFEST)
        .body(body)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(response).await, "SIZE_INVALID");
}
