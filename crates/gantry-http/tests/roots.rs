//! Which roots a client trusts, against a real TLS registry.

use std::time::Duration;

use gantry_http::{RootSource, client, roots};
use gantry_testkit::{Auth, Registry};

#[tokio::test]
async fn an_extra_ca_file_is_trusted_on_top_of_the_system_roots() {
    let Some(registry) = Registry::start(Auth::Tls) else {
        return;
    };
    let url = format!("{}/v2/", registry.url());
    let system = roots(&[]).expect("roots");
    assert_eq!(
        system.source,
        RootSource::System,
        "this machine has a system bundle"
    );
    let plain = client(&system, Duration::from_secs(5)).expect("client");
    assert!(
        plain.get(&url).send().await.is_err(),
        "a private CA is not trusted by default"
    );

    let ca = registry.ca_file().expect("ca file");
    let with_ca = roots(&[ca]).expect("roots");
    assert_eq!(with_ca.extra, 1);
    assert_eq!(with_ca.certificates.len(), system.certificates.len() + 1);
    let response = client(&with_ca, Duration::from_secs(5))
        .expect("client")
        .get(&url)
        .send()
        .await;
    assert_eq!(response.expect("trusted with the extra CA").status(), 200);
}
