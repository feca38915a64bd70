//! Prism really stands between the client and the fake: an invalid request never reaches the fake.

use gantry_testkit::github::{GitHubFake, TOKEN};

#[tokio::test]
async fn prism_refuses_a_request_that_breaks_githubs_description() {
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let client = reqwest::Client::new();
    let send = |body: serde_json::Value| {
        client
            .post(format!("{}/repos/acme/billing/deployments", fake.url()))
            .bearer_auth(TOKEN)
            .header("accept", "application/vnd.github+json")
            .json(&body)
            .send()
    };
    // `ref` is required; `auto_merge` must be a boolean.
    let refused = send(serde_json::json!({"environment": "dev", "auto_merge": "no"}))
        .await
        .expect("answered");
    assert_eq!(
        refused.status(),
        422,
        "{}",
        refused.text().await.unwrap_or_default()
    );
    assert!(
        fake.requests().is_empty(),
        "the fake never saw it: {:?}",
        fake.requests()
    );
    let accepted =
        send(serde_json::json!({"ref": "main", "environment": "dev", "auto_merge": false}))
            .await
            .expect("answered");
    assert_eq!(
        accepted.status(),
        201,
        "{}",
        accepted.text().await.unwrap_or_default()
    );
    assert_eq!(fake.requests(), ["POST /repos/acme/billing/deployments"]);
}
