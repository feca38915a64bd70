//! Where credentials may go and what a registry may make gantry read: the client side of the
//! outside review's findings (H2, bounded reads, foreign `Location`s), and loopback registries
//! reached without flags, as docker and crane reach them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::response::IntoResponse;
use bytes::Bytes;
use gantry_oci::{Client, ClientOptions, Credential, Credentials, OciError, Reference};
use gantry_secret::Secret;

struct TlsBearer {
    running: gantry_registry::Running,
    ca_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// gantry-registry with TLS and bearer auth on `port` (0: any), advertising `public_url` as its
/// realm's base.
async fn tls_bearer(port: u16, public_url: Option<String>) -> TlsBearer {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = gantry_testkit::TestCa::new("trust CA").expect("ca");
    let cert = ca.issue(&["127.0.0.1", "localhost"]).expect("cert");
    std::fs::write(dir.path().join("c.pem"), &cert.cert_pem).expect("cert");
    std::fs::write(dir.path().join("k.pem"), &cert.key_pem).expect("key");
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).expect("ca");
    let running = gantry_registry::start(gantry_registry::Config {
        auth: gantry_registry::AuthMode::Bearer {
            username: "gantry".to_owned(),
            password: Secret::new("tls-bearer-pass"),
        },
        tls: Some(gantry_registry::TlsFiles {
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
        }),
        public_url,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        ..gantry_registry::Config::default()
    })
    .await
    .expect("start");
    TlsBearer {
        running,
        ca_file: dir.path().join("ca.pem"),
        _dir: dir,
    }
}

fn client(registry: &TlsBearer, token_hosts: &[&str]) -> Client {
    Client::new(
        ClientOptions {
            ca_files: vec![registry.ca_file.clone()],
            token_hosts: token_hosts.iter().map(|h| (*h).to_owned()).collect(),
            ..ClientOptions::default()
        },
        Credentials::anonymous().with(
            &registry.running.host(),
            Credential::Basic {
                username: "gantry".to_owned(),
                password: Secret::new("tls-bearer-pass"),
            },
        ),
    )
    .expect("client")
}

fn image(registry: &TlsBearer) -> Reference {
    format!("{}/team/app:v1", registry.running.host())
        .parse()
        .expect("reference")
}

async fn push(client: &Client, image: &Reference) -> Result<(), OciError> {
    let config = Bytes::from_static(b"{}");
    let layer = Bytes::from_static(b"layer");
    client
        .push_image(image, &config, &[("application/octet-stream", &layer)])
        .await
        .map(|_| ())
}

/// H2: TLS and bearer together work end to end, over HTTP/2, with the realm the registry is
/// configured with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_over_tls_push_and_pull() {
    let registry = tls_bearer(0, None).await;
    let client = client(&registry, &[]);
    push(&client, &image(&registry)).await.expect("push");
    let resolved = client.resolve(&image(&registry)).await.expect("resolve");
    assert_eq!(resolved.media_type, gantry_oci::manifest::OCI_MANIFEST);
    let tokens: Vec<_> = client
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("(token)"))
        .collect();
    assert!(
        tokens.iter().all(|r| r
            .path
            .starts_with(&format!("https://{}/token", registry.running.host()))),
        "{tokens:?}"
    );
}

/// H2: an HTTPS registry that names a plain-HTTP realm gets no credentials: they would cross
/// the network in cleartext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_registry_cannot_send_credentials_to_a_plain_http_realm() {
    let port = free_port();
    // Something listens where the realm points, to see whether anyone knocks.
    let knocks = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&knocks);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind realm");
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let registry = tls_bearer(0, Some(format!("http://127.0.0.1:{port}"))).await;
    let client = client(&registry, &[]);
    let err = push(&client, &image(&registry)).await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("does not send credentials in cleartext"),
        "{text}"
    );
    assert_eq!(
        knocks.load(Ordering::Relaxed),
        0,
        "nothing reached the realm"
    );
}

/// H2: a realm on another host gets an anonymous token request, not the registry's password,
/// unless the caller names that host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_only_to_a_realm_on_the_registry_host_or_one_named() {
    // Reached as 127.0.0.1, it names `localhost` as its realm's host.
    let port = free_port();
    let registry = tls_bearer(port, Some(format!("https://localhost:{port}"))).await;
    let refused = push(&client(&registry, &[]), &image(&registry))
        .await
        .expect_err("an anonymous token cannot push");
    let text = refused.to_string();
    assert!(
        text.contains("gantry sent no credentials to localhost")
            && text.contains("--registry-token-host localhost"),
        "{text}"
    );
    push(&client(&registry, &["localhost"]), &image(&registry))
        .await
        .expect("a named token host receives the credentials");
}

/// A fake registry: every request answers with `respond`; what reaches it is recorded.
async fn fake(
    respond: impl Fn(&Request) -> axum::response::Response + Send + Sync + 'static,
) -> (String, Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let respond = Arc::new(respond);
    let app = axum::Router::new().fallback(move |request: Request| {
        let record = Arc::clone(&record);
        let respond = Arc::clone(&respond);
        async move {
            let auth = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            record
                .lock()
                .expect("lock")
                .push((request.uri().to_string(), auth));
            respond(&request)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr.to_string(), seen)
}

/// Low: credentials went to any host a `Location` header named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_on_another_host_gets_no_credentials() {
    let (storage, stored) = fake(|_| (axum::http::StatusCode::CREATED).into_response()).await;
    let storage_url = format!("http://{storage}/upload/abc");
    let (registry, seen) = fake(move |request| {
        let authorized = request.headers().contains_key("authorization");
        if !authorized {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                [("www-authenticate", "Basic realm=\"fake\"")],
            )
                .into_response();
        }
        if request.method() == axum::http::Method::POST {
            return (
                axum::http::StatusCode::ACCEPTED,
                [("location", storage_url.clone())],
            )
                .into_response();
        }
        axum::http::StatusCode::NOT_FOUND.into_response()
    })
    .await;
    let client = Client::new(
        ClientOptions::default(),
        Credentials::anonymous().with(
            &registry,
            Credential::Basic {
                username: "u".to_owned(),
                password: Secret::new("the-registry-password"),
            },
        ),
    )
    .expect("client");
    let target: Reference = format!("{registry}/team/app").parse().expect("reference");
    let digest = gantry_oci::Digest::sha256(b"blob");
    client
        .upload_blob(&target, &digest, Bytes::from_static(b"blob"))
        .await
        .expect("upload");
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter().any(|(_, auth)| auth.is_some()),
        "the registry got its credentials: {seen:?}"
    );
    let stored = stored.lock().expect("lock").clone();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].1, None, "the other host got no Authorization");
}

/// Low: error bodies and token answers were read without a bound (a 300 MB error body cost
/// 611 MiB of RSS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_and_token_answers_are_read_only_up_to_a_bound() {
    const HUGE: usize = 64 * 1024 * 1024;
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    let (registry, _) = fake(move |request| {
        let counter = Arc::clone(&counter);
        let chunks = futures_util::stream::iter((0..HUGE / 65536).map(move |_| {
            counter.fetch_add(65536, Ordering::Relaxed);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 65536]))
        }));
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let status = if request.uri().path() == "/token" {
            axum::http::StatusCode::OK
        } else if authorization.starts_with("Bearer") {
            axum::http::StatusCode::BAD_REQUEST
        } else {
            let host = request
                .headers()
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                [(
                    "www-authenticate",
                    format!("Bearer realm=\"http://{host}/token\",service=\"fake\""),
                )],
            )
                .into_response();
        };
        (status, axum::body::Body::from_stream(chunks)).into_response()
    })
    .await;
    let image: Reference = format!("{registry}/team/app:v1")
        .parse()
        .expect("reference");
    let with = |credential| {
        Client::new(
            ClientOptions::default(),
            Credentials::anonymous().with(&registry, credential),
        )
        .expect("client")
    };
    let err = with(Credential::Bearer(Secret::new("given-token")))
        .manifest(&image)
        .await
        .expect_err("400");
    let text = err.to_string();
    assert!(text.len() < 5000, "the message holds {} bytes", text.len());
    assert!(
        text.contains("cut at 4096 bytes"),
        "{}",
        &text[..200.min(text.len())]
    );

    let err = with(Credential::Basic {
        username: "u".to_owned(),
        password: Secret::new("p"),
    })
    .manifest(&image)
    .await
    .expect_err("the token answer is too large");
    assert!(
        matches!(&err, OciError::TooLarge { what, .. } if what == "the token answer"),
        "{err}"
    );
    assert!(
        served.load(Ordering::Relaxed) < (HUGE / 2) as u64,
        "gantry stopped reading: {} bytes served for two bodies of {HUGE}",
        served.load(Ordering::Relaxed)
    );
}

/// Section 2: loopback registries over plain HTTP need no flag, as with docker and crane; a TLS
/// registry on loopback is still spoken to over HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_registries_are_reached_over_https_or_plain_http_without_flags() {
    let Some(plain) = gantry_testkit::Registry::start_on(
        gantry_testkit::Backend::Gantry,
        gantry_testkit::Auth::Anonymous,
    ) else {
        return;
    };
    let client = Client::new(ClientOptions::default(), Credentials::anonymous()).expect("client");
    let image: Reference = format!("{}/team/app:v1", plain.host())
        .parse()
        .expect("reference");
    push(&client, &image).await.expect("push over plain HTTP");
    client.resolve(&image).await.expect("resolve");

    let Some(tls) = gantry_testkit::Registry::start_on(
        gantry_testkit::Backend::Gantry,
        gantry_testkit::Auth::Tls,
    ) else {
        return;
    };
    let client = Client::new(
        ClientOptions {
            ca_files: tls.ca_file().into_iter().collect(),
            ..ClientOptions::default()
        },
        Credentials::anonymous(),
    )
    .expect("client");
    let image: Reference = format!("{}/team/app:v1", tls.host())
        .parse()
        .expect("reference");
    push(&client, &image).await.expect("push over HTTPS");
    assert!(
        client.requests().iter().all(|r| r.status != 0),
        "no failed attempt: HTTPS worked at once"
    );
}
