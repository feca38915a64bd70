//! Resolve, read and write in every auth mode, on both backends.

use gantry_oci::{OciError, Scope};
use gantry_testkit::{Auth, Backend, Registry};

use crate::support::{client_for, layer, push_image, reference};

async fn round_trip(backend: Backend, auth: Auth) {
    let Some(registry) = Registry::start_on(backend, auth) else {
        return;
    };
    let client = client_for(&registry);
    let target = reference(&registry, "team/app:dev");
    let image = push_image(&client, &target, &[&layer("a", 1000), &layer("b", 2000)]).await;

    let resolved = client.resolve(&target).await.expect("resolve");
    assert_eq!(resolved.digest, image.digest);
    assert_eq!(resolved.media_type, image.media_type);
    assert_eq!(resolved.size, image.bytes.len() as u64);

    let fetched = client.manifest(&target).await.expect("manifest by tag");
    assert_eq!(fetched, image, "bytes come back exactly as pushed");
    let by_digest = client
        .manifest(&target.with_digest(image.digest.clone()))
        .await
        .expect("by digest");
    assert_eq!(by_digest.bytes, image.bytes);

    let fields = image.fields().expect("fields");
    let blob = client
        .blob(&target, &fields.layers[0].digest, 1 << 20)
        .await
        .expect("blob");
    assert_eq!(&blob[..], &layer("a", 1000)[..]);
    let too_small = client
        .blob(&target, &fields.layers[1].digest, 100)
        .await
        .expect_err("limit");
    assert!(
        matches!(too_small, OciError::TooLarge { .. }),
        "{too_small}"
    );

    let missing = client
        .resolve(&reference(&registry, "team/app:nope"))
        .await
        .expect_err("missing tag");
    assert!(missing.is_not_found(), "{missing}");
    let tags = client.tags(&target).await.expect("tags");
    assert_eq!(tags, ["dev"]);
    let pull = [Scope::pull("team/app")];
    assert!(
        client
            .blob_exists(&target, &fields.layers[0].digest, &pull)
            .await
            .expect("head")
            .is_some()
    );
}

on_both_backends!(async fn round_trip_anonymous(backend) {
    round_trip(backend, Auth::Anonymous).await;
});

on_both_backends!(async fn round_trip_basic_auth(backend) {
    round_trip(backend, Auth::Basic).await;
});

on_both_backends!(async fn round_trip_bearer_tokens(backend) {
    round_trip(backend, Auth::Bearer).await;
});

on_both_backends!(async fn round_trip_tls(backend) {
    round_trip(backend, Auth::Tls).await;
});

#[tokio::test]
async fn bearer_tokens_are_reused_per_scope() {
    let Some(registry) = Registry::start(Auth::Bearer) else {
        return;
    };
    let client = client_for(&registry);
    let target = reference(&registry, "team/app:dev");
    push_image(&client, &target, &[b"x"]).await;
    let issued = registry.tokens_issued();
    for _ in 0..3 {
        client.resolve(&target).await.expect("resolve");
    }
    assert_eq!(
        registry.tokens_issued(),
        issued + 1,
        "one pull token for three resolves"
    );
}

on_both_backends!(async fn refused_credentials_are_reported_as_such(backend) {
    for auth in [Auth::Basic, Auth::Bearer] {
        let Some(registry) = Registry::start_on(backend, auth) else { return };
        let client = gantry_oci::Client::new(
            gantry_oci::ClientOptions { plain_http: vec![registry.host()], ..Default::default() },
            gantry_oci::Credentials::anonymous().with(
                &registry.host(),
                gantry_oci::Credential::Basic {
                    username: "gantry".into(),
                    password: gantry_secret::Secret::new("wrong"),
                },
            ),
        )
        .expect("client");
        let err = client.resolve(&reference(&registry, "team/app:dev")).await.expect_err("refused");
        assert!(matches!(err, OciError::Unauthorized { status: 401, .. }), "{auth:?}: {err}");
        assert!(err.to_string().contains("refused the credentials"), "{err}");
    }
});

#[tokio::test]
async fn docker_identity_tokens_are_exchanged_at_the_realm() {
    let Some(registry) = Registry::start(Auth::Bearer) else {
        return;
    };
    push_image(
        &client_for(&registry),
        &reference(&registry, "team/app:dev"),
        &[b"x"],
    )
    .await;
    let with_refresh = |token: &str| {
        gantry_oci::Client::new(
            gantry_oci::ClientOptions {
                plain_http: vec![registry.host()],
                ..Default::default()
            },
            gantry_oci::Credentials::anonymous().with(
                &registry.host(),
                gantry_oci::Credential::IdentityToken(gantry_secret::Secret::new(token)),
            ),
        )
        .expect("client")
    };
    let good = with_refresh(gantry_testkit::token::REFRESH_TOKEN);
    good.resolve(&reference(&registry, "team/app:dev"))
        .await
        .expect("resolve with an identity token");
    let bad = with_refresh("stale-refresh-token");
    let err = bad
        .resolve(&reference(&registry, "team/app:dev"))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, OciError::Unauthorized { status: 401, .. }),
        "{err}"
    );
}
