//! A registry that lies, drops connections, throttles or refuses: a clear error or a correct
//! retry, and the target tag never moves.

use std::time::{Duration, Instant};

use gantry_oci::{
    Client, ClientOptions, CopyOptions, Credential, Credentials, OciError, Reference,
};
use gantry_testkit::{Auth, Fault, FaultyProxy, Registry};

use crate::support::{client_for, layer, push_image, reference};

struct Setup {
    _registry: Registry,
    proxy: FaultyProxy,
    client: Client,
    old: gantry_oci::Manifest,
    new: gantry_oci::Manifest,
}

/// A registry with `team/app:new` to copy and `prod/app:live` at an older image, behind a proxy.
async fn setup() -> Option<Setup> {
    let registry = Registry::start(Auth::Anonymous)?;
    let direct = client_for(&registry);
    let old = push_image(&direct, &reference(&registry, "prod/app:live"), &[b"old"]).await;
    let new = push_image(
        &direct,
        &reference(&registry, "team/app:new"),
        &[&layer("new", 100_000)],
    )
    .await;
    let proxy = FaultyProxy::start(&registry.host()).expect("proxy");
    let options = ClientOptions {
        plain_http: vec![proxy.host()],
        retry: gantry_http::retry::Policy {
            first_delay: Duration::from_millis(10),
            ..gantry_http::retry::Policy::default()
        },
        ..ClientOptions::default()
    };
    let client = Client::new(options, Credentials::anonymous()).expect("client");
    Some(Setup {
        _registry: registry,
        proxy,
        client,
        old,
        new,
    })
}

/// A client that reaches both the proxy and `other`, and `other`'s `prod/app:live`.
fn through_proxy_and(setup: &Setup, other: &Registry) -> (Client, Reference) {
    let options = ClientOptions {
        plain_http: vec![setup.proxy.host(), other.host()],
        ..ClientOptions::default()
    };
    let client = Client::new(options, Credentials::anonymous()).expect("client");
    (client, reference(other, "prod/app:live"))
}

fn at(setup: &Setup, path: &str) -> Reference {
    format!("{}/{path}", setup.proxy.host())
        .parse()
        .expect("reference")
}

async fn assert_target_unmoved(setup: &Setup) {
    let live = setup
        .client
        .resolve(&at(setup, "prod/app:live"))
        .await
        .expect("resolve target");
    assert_eq!(
        live.digest, setup.old.digest,
        "the target tag must not move"
    );
}

#[tokio::test]
async fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let Some(setup) = setup().await else { return };
    setup
        .proxy
        .inject("GET", "/v2/team/app/manifests/new", Fault::CorruptBody, 1);
    let err = setup
        .client
        .copy(
            &at(&setup, "team/app:new"),
            &at(&setup, "prod/app:live"),
            CopyOptions::default(),
        )
        .await
        .expect_err("corrupt manifest");
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("expected digest {}", setup.new.digest)),
        "{err}"
    );
    assert_target_unmoved(&setup).await;
}

/// A copy from the proxied registry to a second one while the layer's GET is broken by `fault`:
/// it must fail and create no tag. Returns the error, the second registry and the layer digest.
async fn copy_with_a_broken_layer(
    setup: &Setup,
    fault: Fault,
) -> (OciError, Registry, gantry_oci::Digest) {
    let other = Registry::start(Auth::Anonymous).expect("second registry");
    let layer = setup.new.fields().expect("fields").layers[0].digest.clone();
    setup
        .proxy
        .inject("GET", &format!("/blobs/{layer}"), fault, 10);
    let (client, target) = through_proxy_and(setup, &other);
    let err = client
        .copy(&at(setup, "team/app:new"), &target, CopyOptions::default())
        .await
        .expect_err("a broken layer must fail the copy");
    assert!(
        client.head_manifest(&target).await.expect("head").is_none(),
        "no tag was created"
    );
    (err, other, layer)
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_refused() {
    let Some(setup) = setup().await else { return };
    let (err, _other, layer) = copy_with_a_broken_layer(&setup, Fault::CorruptBody).await;
    assert!(
        matches!(&err, OciError::DigestMismatch { what, .. } if what.contains(layer.as_str())),
        "{err}"
    );
    let direct = setup
        .client
        .blob(&at(&setup, "team/app"), &layer, 1 << 20)
        .await
        .expect_err("whole read");
    assert!(
        matches!(direct, OciError::DigestMismatch { .. }),
        "{direct}"
    );
}

#[tokio::test]
async fn a_connection_dropped_mid_blob_is_an_error_and_moves_nothing() {
    let Some(setup) = setup().await else { return };
    let (err, other, layer) = copy_with_a_broken_layer(&setup, Fault::DropMidBody).await;
    assert!(
        matches!(err, OciError::Http { .. } | OciError::Status { .. }),
        "{err}"
    );
    assert!(
        !blob_committed(&other, &layer).await,
        "the half blob was not committed"
    );
}

/// Whether `prod/app` in `registry` holds the blob, asked directly (not through the proxy).
async fn blob_committed(registry: &Registry, digest: &gantry_oci::Digest) -> bool {
    let repo = reference(registry, "prod/app");
    let scopes = [gantry_oci::Scope::pull("prod/app")];
    client_for(registry)
        .blob_exists(&repo, digest, &scopes)
        .await
        .expect("head")
        .is_some()
}

#[tokio::test]
async fn throttling_is_retried_after_the_time_the_registry_asks_for() {
    let Some(setup) = setup().await else { return };
    setup.proxy.inject(
        "GET",
        "/v2/team/app/manifests/new",
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    );
    setup
        .proxy
        .inject("PUT", "/v2/prod/app/manifests/live", Fault::Unavailable, 2);
    let started = Instant::now();
    let report = setup
        .client
        .copy(
            &at(&setup, "team/app:new"),
            &at(&setup, "prod/app:live"),
            CopyOptions::default(),
        )
        .await
        .expect("copy after retries");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(report.counts.retries, 3, "one 429 and two 503s");
    let live = setup
        .client
        .resolve(&at(&setup, "prod/app:live"))
        .await
        .expect("resolve");
    assert_eq!(live.digest, setup.new.digest);
}

#[tokio::test]
async fn a_registry_that_keeps_failing_gives_up_with_the_status() {
    let Some(setup) = setup().await else { return };
    setup
        .proxy
        .inject("GET", "/v2/team/app/manifests/new", Fault::Unavailable, 100);
    let err = setup
        .client
        .copy(
            &at(&setup, "team/app:new"),
            &at(&setup, "prod/app:live"),
            CopyOptions::default(),
        )
        .await
        .expect_err("gives up");
    assert!(matches!(err, OciError::Status { status: 503, .. }), "{err}");
    assert_eq!(
        setup
            .proxy
            .log()
            .iter()
            .filter(|l| l.contains("(Unavailable)"))
            .count(),
        4,
        "max_attempts tries"
    );
    assert_target_unmoved(&setup).await;
}

#[tokio::test]
async fn refused_push_credentials_leave_the_target_alone() {
    let Some(source) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let Some(target) = Registry::start(Auth::Basic) else {
        return;
    };
    let good = client_for(&target);
    let old = push_image(&good, &reference(&target, "prod/app:live"), &[b"old"]).await;
    push_image(
        &client_for(&source),
        &reference(&source, "team/app:new"),
        &[b"new"],
    )
    .await;
    let client = Client::new(
        ClientOptions {
            plain_http: vec![source.host(), target.host()],
            ..ClientOptions::default()
        },
        Credentials::anonymous().with(
            &target.host(),
            Credential::Basic {
                username: "gantry".into(),
                password: gantry_secret::Secret::new("wrong"),
            },
        ),
    )
    .expect("client");
    let err = client
        .copy(
            &reference(&source, "team/app:new"),
            &reference(&target, "prod/app:live"),
            CopyOptions::default(),
        )
        .await
        .expect_err("refused");
    assert!(matches!(err, OciError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("may push to prod/app"), "{err}");
    assert_eq!(
        good.resolve(&reference(&target, "prod/app:live"))
            .await
            .expect("resolve")
            .digest,
        old.digest
    );
}

#[tokio::test]
async fn a_registry_without_digest_headers_is_resolved_by_hashing_the_body() {
    let Some(setup) = setup().await else { return };
    setup.proxy.inject(
        "HEAD",
        "/v2/team/app/manifests/new",
        Fault::StripHeader("docker-content-digest"),
        1,
    );
    let before = setup.client.requests().len();
    let resolved = setup
        .client
        .resolve(&at(&setup, "team/app:new"))
        .await
        .expect("resolve");
    assert_eq!(resolved.digest, setup.new.digest);
    let methods: Vec<String> = setup.client.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(
        methods,
        ["HEAD", "GET"],
        "HEAD without a digest falls back to GET"
    );
}

#[tokio::test]
async fn a_lost_update_of_the_fallback_index_is_caught_and_written_again() {
    let Some(setup) = setup().await else { return };
    let fallback = format!("/manifests/{}", setup.new.digest.fallback_tag());
    setup.proxy.inject("PUT", &fallback, Fault::LoseWrite, 1);
    let artifact = gantry_oci::Artifact {
        artifact_type: "application/vnd.example+json".into(),
        layers: vec![],
        subject: Some(setup.new.descriptor()),
        annotations: std::collections::BTreeMap::new(),
    };
    let pushed = setup
        .client
        .push_artifact(&at(&setup, "team/app"), &artifact)
        .await
        .expect("push");
    let referrers = setup
        .client
        .referrers(
            &at(&setup, "team/app").with_digest(setup.new.digest.clone()),
            None,
        )
        .await
        .expect("referrers");
    assert_eq!(
        referrers
            .descriptors
            .iter()
            .map(|d| &d.digest)
            .collect::<Vec<_>>(),
        [&pushed.digest]
    );
    let puts = setup
        .proxy
        .log()
        .iter()
        .filter(|l| l.starts_with("PUT") && l.contains(&fallback))
        .count();
    assert_eq!(
        puts,
        2,
        "the re-read saw the entry missing and wrote it again: {:?}",
        setup.proxy.log()
    );
}

#[tokio::test]
async fn a_manifest_over_the_size_limit_is_refused_before_it_is_read_whole() {
    use axum::http::header;
    use axum::response::IntoResponse as _;
    let app = axum::Router::new().fallback(|request: axum::extract::Request| async move {
        let big = "x".repeat(5 * 1024 * 1024);
        let body = format!("{{\"schemaVersion\":2,\"pad\":\"{big}\"}}");
        if request.uri().path().ends_with("/chunked") {
            let stream =
                futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
            (
                [(
                    header::CONTENT_TYPE,
                    "application/vnd.oci.image.manifest.v1+json",
                )],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        } else {
            (
                [(
                    header::CONTENT_TYPE,
                    "application/vnd.oci.image.manifest.v1+json",
                )],
                body,
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Client::new(
        ClientOptions {
            plain_http: vec![host.clone()],
            ..ClientOptions::default()
        },
        Credentials::anonymous(),
    )
    .expect("client");
    for tag in ["sized", "chunked"] {
        let reference: Reference = format!("{host}/big/app:{tag}").parse().expect("reference");
        let err = client.manifest(&reference).await.expect_err("too large");
        assert!(
            matches!(
                err,
                OciError::TooLarge {
                    limit: 4_194_304,
                    ..
                }
            ),
            "{tag}: {err}"
        );
    }
}

#[tokio::test]
async fn a_registry_that_cannot_be_reached_is_retried_then_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let host = format!("127.0.0.1:{port}");
    let client = Client::new(
        ClientOptions {
            plain_http: vec![host.clone()],
            retry: gantry_http::retry::Policy {
                first_delay: Duration::from_millis(5),
                ..gantry_http::retry::Policy::default()
            },
            ..ClientOptions::default()
        },
        Credentials::anonymous(),
    )
    .expect("client");
    let reference: Reference = format!("{host}/team/app:dev").parse().expect("reference");
    let err = client
        .resolve(&reference)
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, OciError::Http { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("HEAD http://{host}/v2/team/app/manifests/dev")),
        "{err}"
    );
    assert_eq!(client.counts().retries, 3, "four tries in all");
}
