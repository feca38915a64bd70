use gantry_testkit::{Auth, Registry};
use reqwest::StatusCode;

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn anonymous_registry_answers_v2() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let response = client()
        .get(format!("{}/v2/", registry.url()))
        .send()
        .await
        .expect("get /v2/");
    assert_eq!(response.status(), StatusCode::OK, "{}", registry.log());
    assert_eq!(
        response
            .headers()
            .get("docker-distribution-api-version")
            .and_then(|v| v.to_str().ok()),
        Some("registry/2.0")
    );
}

#[tokio::test]
async fn basic_registry_challenges_then_accepts_credentials() {
    let Some(registry) = Registry::start(Auth::Basic) else {
        return;
    };
    let url = format!("{}/v2/", registry.url());
    let response = client().get(&url).send().await.expect("get /v2/");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&response).starts_with("Basic realm="),
        "{}",
        challenge(&response)
    );

    let (user, pass) = registry.credentials().expect("credentials");
    let wrong = client()
        .get(&url)
        .basic_auth(user, Some("wrong"))
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = client()
        .get(&url)
        .basic_auth(user, Some(pass))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), StatusCode::OK, "{}", registry.log());
}

#[tokio::test]
async fn bearer_registry_runs_the_token_challenge_flow() {
    let Some(registry) = Registry::start(Auth::Bearer) else {
        return;
    };
    let http = client();
    let repo_url = format!("{}/v2/team/app/tags/list", registry.url());
    let response = http.get(&repo_url).send().await.expect("get tags");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let header = challenge(&response);
    assert!(header.starts_with("Bearer "), "{header}");
    let realm = registry.token_realm().expect("realm");
    assert!(header.contains(&format!("realm=\"{realm}\"")), "{header}");
    assert!(
        header.contains("scope=\"repository:team/app:pull\""),
        "{header}"
    );

    let (user, pass) = registry.credentials().expect("credentials");
    let denied = http
        .get(realm)
        .basic_auth(user, Some("wrong"))
        .send()
        .await
        .expect("token");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let token: serde_json::Value = http
        .get(realm)
        .basic_auth(user, Some(pass))
        .query(&[
            ("service", "gantry-testkit-registry"),
            ("scope", "repository:team/app:pull"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let token = token["token"].as_str().expect("token field");
    assert_eq!(registry.tokens_issued(), 1);

    // The registry verified our JWT: an unknown repository is now 404, not 401.
    let response = http
        .get(&repo_url)
        .bearer_auth(token)
        .send()
        .await
        .expect("get tags");
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "{}",
        registry.log()
    );
    let body: serde_json::Value = response.json().await.expect("error json");
    assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");
    // A token for one repository does not open another.
    let other = http
        .get(format!("{}/v2/team/other/tags/list", registry.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("get other");
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tls_registry_is_trusted_only_with_its_ca() {
    let Some(registry) = Registry::start(Auth::Tls) else {
        return;
    };
    let url = format!("{}/v2/", registry.url());
    assert!(url.starts_with("https://"));
    let untrusted = client().get(&url).send().await;
    assert!(
        untrusted.is_err(),
        "a self-signed CA must not be trusted by default"
    );

    let ca =
        reqwest::Certificate::from_pem(registry.ca_pem().expect("ca").as_bytes()).expect("ca pem");
    let trusted = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let response = trusted.get(&url).send().await.expect("get /v2/ over TLS");
    assert_eq!(response.status(), StatusCode::OK);
}
