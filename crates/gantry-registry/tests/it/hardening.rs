//! The attacks an outside review reproduced against the registry, each replayed here: it must fail
//! against the fixed registry and would succeed against the one before.

use std::time::Duration;

use bytes::Bytes;
use gantry_oci::Digest;
use gantry_oci::manifest::{OCI_INDEX, OCI_MANIFEST};
use gantry_registry::{AuthMode, Config, Limits, TlsFiles};
use gantry_secret::Secret;
use reqwest::StatusCode;
use serde_json::json;

use crate::{error_code, http, patch_chunk, upload};

async fn start_with(config: Config) -> gantry_registry::Running {
    gantry_registry::start(config).await.expect("start")
}

async fn start_upload(base: &str, repo: &str) -> String {
    let started = http()
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    format!(
        "{base}{}",
        started.headers()["location"].to_str().expect("location")
    )
}

async fn fetch_blob(base: &str, repo: &str, digest: &Digest) -> Bytes {
    let response = http()
        .get(format!("{base}/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("get blob");
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.expect("body")
}

fn layer(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect()
}

/// H1: a second PATCH left open on an upload kept writing into the blob the upload committed, so
/// `attacker/x` rewrote the layer `victim/app` serves (19,022 bytes under a 19,000-byte digest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_patch_cannot_write_into_a_committed_blob_of_another_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || Config {
        storage: Some(dir.path().to_owned()),
        ..Config::default()
    };
    let registry = start_with(config()).await;
    let base = format!("http://{}", registry.host());
    let bytes = layer(19_000);
    let digest = upload(&base, "victim/app", &bytes).await;

    let location = start_upload(&base, "attacker/x").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let mut rx = rx;
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let open_patch = tokio::spawn(
        http()
            .patch(&location)
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    // Give the open PATCH time to reach the registry (its status then says another request
    // writes the upload).
    for _ in 0..50 {
        let status = http().get(&location).send().await.expect("status");
        if status.status() == StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let put = http()
        .put(format!("{location}?digest={digest}"))
        .body(bytes.clone())
        .send()
        .await
        .expect("put");
    let put_status = put.status();
    let put_code = error_code(put).await;

    tx.send(Ok(Bytes::from_static(b"twenty-two evil bytes!")))
        .await
        .expect("send");
    drop(tx);
    let _ = open_patch.await.expect("join");
    let served = fetch_blob(&base, "victim/app", &digest).await;
    assert_eq!(
        (served.len(), Digest::sha256(&served)),
        (19_000, digest.clone()),
        "victim/app serves its layer unchanged"
    );
    assert_eq!(
        (put_status, put_code.as_str()),
        (StatusCode::CONFLICT, "BLOB_UPLOAD_INVALID"),
        "a PUT while a PATCH writes the same upload is refused"
    );
    assert_eq!(fetch_blob(&base, "victim/app", &digest).await, bytes);
    // Whatever the attacker's upload holds now cannot be committed under the victim's digest.
    let late = http()
        .put(format!("{location}?digest={digest}"))
        .send()
        .await
        .expect("put");
    assert_eq!(error_code(late).await, "DIGEST_INVALID");

    registry.stop().await;
    let registry = start_with(config()).await;
    let base = format!("http://{}", registry.host());
    let served = fetch_blob(&base, "victim/app", &digest).await;
    assert_eq!(served.len(), 19_000);
    assert_eq!(Digest::sha256(&served), digest, "across a restart too");
}

/// H1, the second rule: a commit never replaces a stored blob, even with the same digest.
#[tokio::test]
async fn a_second_upload_of_a_stored_digest_leaves_the_first_file_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = start_with(Config {
        storage: Some(dir.path().to_owned()),
        ..Config::default()
    })
    .await;
    let base = format!("http://{}", registry.host());
    let digest = upload(&base, "victim/app", b"shared layer").await;
    let file = dir.path().join("blobs/sha256").join(digest.hex());
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).expect("blob"));
    upload(&base, "attacker/x", b"shared layer").await;
    let after = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).expect("blob"));
    assert_eq!(inode, after, "the stored file was not replaced");
    let spooled: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
        .expect("uploads")
        .collect();
    assert!(
        spooled.is_empty(),
        "the second copy is dropped: {spooled:?}"
    );
}

fn bearer_config(dir: &std::path::Path, tls: Option<TlsFiles>) -> Config {
    Config {
        storage: Some(dir.join("data")),
        auth: AuthMode::Bearer {
            username: "gantry".to_owned(),
            password: Secret::new("s3cret-pass"),
        },
        tls,
        ..Config::default()
    }
}

fn test_tls(dir: &std::path::Path) -> (TlsFiles, reqwest::Client) {
    let ca = gantry_testkit::pki::TestCa::new("hardening CA").expect("ca");
    let cert = ca.issue(&["127.0.0.1", "localhost"]).expect("cert");
    std::fs::write(dir.join("server.pem"), &cert.cert_pem).expect("cert");
    std::fs::write(dir.join("server.key"), &cert.key_pem).expect("key");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("ca")])
        .build()
        .expect("client");
    (
        TlsFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        },
        client,
    )
}

fn challenge_realm(response: &reqwest::Response) -> String {
    let header = response.headers()["www-authenticate"]
        .to_str()
        .expect("challenge");
    let start = header.find("realm=\"").expect("realm") + "realm=\"".len();
    header[start..]
        .split('"')
        .next()
        .expect("quoted")
        .to_owned()
}

/// H2: with TLS and bearer auth, the realm came from the Host header, which HTTP/2 does not send:
/// `http://127.0.0.1/token`, where a client sent the password in cleartext to port 80.
#[tokio::test]
async fn the_bearer_realm_comes_from_the_configuration_never_from_the_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls, client) = test_tls(dir.path());
    let registry = start_with(bearer_config(dir.path(), Some(tls.clone()))).await;
    let base = format!("https://{}", registry.host());
    let answer = client
        .get(format!("{base}/v2/team/app/tags/list"))
        .send()
        .await
        .expect("h2 request");
    assert_eq!(answer.version(), reqwest::Version::HTTP_2, "ALPN chose h2");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge_realm(&answer), format!("{base}/token"));

    let spoofed = client
        .get(format!("{base}/v2/"))
        .header("host", "localhost:1")
        .version(reqwest::Version::HTTP_11)
        .send()
        .await
        .expect("request");
    assert_eq!(
        challenge_realm(&spoofed),
        format!("{base}/token"),
        "a Host header does not move the realm"
    );

    let public = start_with(Config {
        public_url: Some("https://registry.example:8443/".to_owned()),
        allow_remote: false,
        ..bearer_config(dir.path(), Some(tls))
    })
    .await;
    let answer = client
        .get(format!("https://{}/v2/", public.host()))
        .send()
        .await
        .expect("request");
    assert_eq!(
        challenge_realm(&answer),
        "https://registry.example:8443/token"
    );
    let bad = gantry_registry::start(Config {
        public_url: Some("https://registry.example/path".to_owned()),
        ..Config::default()
    })
    .await
    .err()
    .expect("a public URL with a path is refused");
    assert!(bad.to_string().contains("without a path"), "{bad}");
}

/// The token endpoint's answer for `scopes`, asked with the test credentials.
async fn token_answer(base: &str, scopes: &[&str]) -> serde_json::Value {
    let query: String = scopes
        .iter()
        .map(|s| format!("scope={s}"))
        .collect::<Vec<_>>()
        .join("&");
    http()
        .get(format!("{base}/token?service=gantry-registry&{query}"))
        .basic_auth("gantry", Some("s3cret-pass"))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json")
}

async fn token(base: &str, scopes: &[&str]) -> String {
    token_answer(base, scopes).await["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// M2: a push token for `attacker/x` mounted any blob of `victim/app` without pull on it.
#[tokio::test]
async fn a_mount_needs_pull_access_to_the_source_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = start_with(bearer_config(dir.path(), None)).await;
    let base = format!("http://{}", registry.host());
    let victim = token(&base, &["repository:victim/app:pull,push"]).await;
    let digest = Digest::sha256(b"secret layer");
    let pushed = http()
        .post(format!(
            "{base}/v2/victim/app/blobs/uploads/?digest={digest}"
        ))
        .bearer_auth(&victim)
        .body("secret layer")
        .send()
        .await
        .expect("push");
    assert_eq!(pushed.status(), StatusCode::CREATED);

    let attacker = token(&base, &["repository:attacker/x:pull,push"]).await;
    let mount = format!("{base}/v2/attacker/x/blobs/uploads/?mount={digest}&from=victim/app");
    let refused = http()
        .post(&mount)
        .bearer_auth(&attacker)
        .send()
        .await
        .expect("mount");
    assert_eq!(
        refused.status(),
        StatusCode::ACCEPTED,
        "no pull on the source: a normal upload, not a mount"
    );
    let read = http()
        .get(format!("{base}/v2/attacker/x/blobs/{digest}"))
        .bearer_auth(&attacker)
        .send()
        .await
        .expect("get");
    assert_eq!(read.status(), StatusCode::NOT_FOUND);

    let both = token(
        &base,
        &[
            "repository:attacker/x:pull,push",
            "repository:victim/app:pull",
        ],
    )
    .await;
    let mounted = http()
        .post(&mount)
        .bearer_auth(&both)
        .send()
        .await
        .expect("mount");
    assert_eq!(mounted.status(), StatusCode::CREATED);
}

/// M4: tokens advertised `expires_in: 300` were still valid after 305 s.
#[tokio::test]
async fn bearer_tokens_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = start_with(Config {
        token_lifetime: Duration::from_secs(1),
        ..bearer_config(dir.path(), None)
    })
    .await;
    let base = format!("http://{}", registry.host());
    let answer = token_answer(&base, &["repository:team/app:pull"]).await;
    assert_eq!(answer["expires_in"], 1);
    let token = answer["token"].as_str().expect("token").to_owned();
    let list = || {
        http()
            .get(format!("{base}/v2/team/app/tags/list"))
            .bearer_auth(&token)
            .send()
    };
    assert_ne!(
        list().await.expect("list").status(),
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        list().await.expect("list").status(),
        StatusCode::UNAUTHORIZED,
        "an expired token is refused"
    );
}

/// M5: no size limit, upload sessions that never expired (2,001 orphaned spool files survived a
/// restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_bounded_and_idle_sessions_expire_with_their_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = Limits {
        max_blob_size: 1000,
        budget: 1500,
        max_sessions: 3,
        idle_timeout: Duration::from_millis(300),
    };
    let config = || Config {
        storage: Some(dir.path().to_owned()),
        limits,
        ..Config::default()
    };
    let spooled = || {
        std::fs::read_dir(dir.path().join("uploads"))
            .expect("uploads")
            .count()
    };
    let registry = start_with(config()).await;
    let base = format!("http://{}", registry.host());

    let big = layer(1001);
    let too_large = http()
        .post(format!(
            "{base}/v2/team/app/blobs/uploads/?digest={}",
            Digest::sha256(&big)
        ))
        .body(big)
        .send()
        .await
        .expect("push");
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(too_large).await, "SIZE_INVALID");
    assert_eq!(spooled(), 0, "the refused upload left no file");

    let first = start_upload(&base, "team/app").await;
    let second = start_upload(&base, "team/app").await;
    let patch = |location: &str, size: usize| http().patch(location).body(layer(size)).send();
    assert_eq!(
        patch(&first, 700).await.expect("patch").status(),
        StatusCode::ACCEPTED
    );
    let over = patch(&second, 900).await.expect("patch");
    assert_eq!(
        over.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "1,600 bytes in unfinished uploads would exceed the 1,500-byte budget"
    );
    let gone = http().get(&second).send().await.expect("status");
    assert_eq!(
        error_code(gone).await,
        "BLOB_UPLOAD_UNKNOWN",
        "and it was discarded"
    );
    let _third = start_upload(&base, "team/app").await;
    let _fourth = start_upload(&base, "team/app").await;
    let fifth = http()
        .post(format!("{base}/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .expect("start");
    assert_eq!(
        fifth.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "three sessions at most"
    );

    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(spooled(), 0, "idle sessions were removed with their files");
    let gone = http().get(&first).send().await.expect("status");
    assert_eq!(error_code(gone).await, "BLOB_UPLOAD_UNKNOWN");

    // Sessions end with the run: files an earlier run left are removed at start-up.
    let _open = start_upload(&base, "team/app").await;
    registry.stop().await;
    std::fs::write(dir.path().join("uploads/left-over"), b"x").expect("write");
    let _registry = start_with(config()).await;
    assert_eq!(spooled(), 0, "start-up removed what the last run left");
}

/// Low: the loopback registry accepted any Host (DNS rebinding) and cross-site simple POSTs.
#[tokio::test]
async fn on_loopback_only_loopback_hosts_and_no_web_pages_are_served() {
    let registry = start_with(Config::default()).await;
    let base = format!("http://{}", registry.host());
    for host in ["127.0.0.1", "localhost:5000", "[::1]:80"] {
        let ok = http()
            .get(format!("{base}/v2/"))
            .header("host", host)
            .send()
            .await
            .expect("get");
        assert_eq!(ok.status(), StatusCode::OK, "{host}");
    }
    let rebound = http()
        .get(format!("{base}/v2/"))
        .header("host", "evil.example:5000")
        .send()
        .await
        .expect("get");
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(rebound).await, "DENIED");
    let cross_site = http()
        .post(format!("{base}/v2/team/app/blobs/uploads/"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("post");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(cross_site).await, "DENIED");

    let remote = start_with(Config {
        allow_remote: true,
        ..Config::default()
    })
    .await;
    let any = http()
        .get(format!("http://{}/v2/", remote.host()))
        .header("host", "registry.example")
        .send()
        .await
        .expect("get");
    assert_eq!(
        any.status(),
        StatusCode::OK,
        "a registry serving other hosts takes any name"
    );
}

async fn put_manifest(
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &str,
) -> reqwest::Response {
    http()
        .put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("put manifest")
}

fn image_manifest(config: &Digest, size: usize) -> serde_json::Value {
    json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": size},
        "layers": []
    })
}

/// Low: a manifest pushed by a `sha512:` reference answered 201, then 404 on GET; an
/// index-shaped body pushed as an image manifest skipped the child checks.
#[tokio::test]
async fn manifests_are_stored_under_the_digest_they_were_pushed_by_and_must_have_their_shape() {
    let registry = start_with(Config::default()).await;
    let base = format!("http://{}", registry.host());
    let config = upload(&base, "team/app", b"{}").await;
    let body = image_manifest(&config, 2).to_string();
    let sha512 = format!("sha512:{}", "0".repeat(128))
        .parse::<Digest>()
        .expect("digest")
        .hash_like(body.as_bytes());
    assert_ne!(sha512.algorithm(), Digest::sha256(b"").algorithm());
    let put = put_manifest(&base, "team/app", sha512.as_str(), OCI_MANIFEST, &body).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(put.headers()["docker-content-digest"], sha512.as_str());
    let got = http()
        .get(format!("{base}/v2/team/app/manifests/{sha512}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.text().await.expect("body"), body);

    let missing_child = Digest::sha256(b"no such manifest");
    let index_shaped = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [],
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing_child, "size": 10}]
    })
    .to_string();
    let refused = put_manifest(&base, "team/app", "v1", OCI_MANIFEST, &index_shaped).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(refused).await, "MANIFEST_INVALID");
    let child = Digest::sha256(body.as_bytes());
    put_manifest(&base, "team/app", child.as_str(), OCI_MANIFEST, &body).await;
    let index_with_layers = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": body.len()}],
        "layers": []
    })
    .to_string();
    let refused = put_manifest(&base, "team/app", "v2", OCI_INDEX, &index_with_layers).await;
    assert_eq!(error_code(refused).await, "MANIFEST_INVALID");
}

/// Low: a chunk's `Content-Range` end was never checked, and a non-ASCII header skipped the check.
#[tokio::test]
async fn a_chunk_must_hold_exactly_the_range_it_names() {
    let registry = start_with(Config::default()).await;
    let base = format!("http://{}", registry.host());
    let location = start_upload(&base, "team/app").await;
    let short = patch_chunk(&location, "0-9", "hello").await;
    assert_eq!(short.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let location = start_upload(&base, "team/app").await;
    let not_ascii = patch_chunk(
        &location,
        reqwest::header::HeaderValue::from_bytes(b"0-4\xff").expect("header"),
        "hello",
    )
    .await;
    assert_eq!(not_ascii.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let backwards = patch_chunk(&location, "4-0", "hello").await;
    assert_eq!(backwards.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let exact = patch_chunk(&location, "0-4", "hello").await;
    assert_eq!(exact.status(), StatusCode::ACCEPTED);
}

/// M5: file I/O ran under the one global lock, so a slow write stalled every other request
/// (742 ms during a 200 MiB commit). Here the index write of a push is made to block outright
/// (its temporary file is a FIFO nobody reads): reads must still be answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_blocks_on_disk_does_not_stall_other_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The registry on a runtime of its own: if it stalls, this test's runtime still runs the
    // timeouts that say so.
    let storage = dir.path().to_owned();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let registry = start_with(Config {
                storage: Some(storage),
                ..Config::default()
            })
            .await;
            addr_tx.send(registry.host()).expect("send");
            let _ = stop_rx.await;
        });
    });
    let base = format!("http://{}", addr_rx.recv().expect("address"));
    upload(&base, "team/app", b"before").await;
    let fifo = dir.path().join("repositories.json.tmp");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());

    // This push's index write opens the FIFO for writing and waits for a reader.
    let blocked = tokio::spawn({
        let base = base.clone();
        async move { upload(&base, "team/app", b"after").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !blocked.is_finished(),
        "the index write is blocked on the FIFO"
    );

    let read = tokio::time::timeout(
        Duration::from_secs(20),
        http()
            .head(format!(
                "{base}/v2/team/app/blobs/{}",
                Digest::sha256(b"before")
            ))
            .send(),
    )
    .await;
    let answered = read.is_ok_and(|r| r.is_ok_and(|r| r.status() == StatusCode::OK));

    // Let the write go: read the FIFO until it closes.
    let drained = tokio::task::spawn_blocking(move || std::fs::read(&fifo));
    let _ = tokio::time::timeout(Duration::from_secs(20), blocked).await;
    let _ = drained.await;
    let _ = stop_tx.send(());
    let _ = server.join();
    assert!(answered, "a read waited for another request's disk write");
}
