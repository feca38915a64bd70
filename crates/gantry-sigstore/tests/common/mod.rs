//! Helpers shared by the registry tests: a client for a test registry, an image pushed to it.

use bytes::Bytes;
use gantry_oci::{
    Client, ClientOptions, Credential, Credentials, ImageConfig, ImageFile, Reference, ScratchImage,
};
use gantry_testkit::Registry;

pub fn client(registry: &Registry) -> Client {
    let mut credentials = Credentials::anonymous();
    if let Some((user, pass)) = registry.credentials() {
        credentials = credentials.with(
            &registry.host(),
            Credential::Basic {
                username: user.to_owned(),
                password: gantry_secret::Secret::new(pass),
            },
        );
    }
    Client::new(
        ClientOptions {
            plain_http: vec![registry.host()],
            ..ClientOptions::default()
        },
        credentials,
    )
    .expect("client")
}

pub async fn push_image(client: &Client, registry: &Registry, content: &'static [u8]) -> Reference {
    let image = ScratchImage::build(
        &[ImageFile {
            path: "/app".into(),
            mode: 0o755,
            bytes: Bytes::from_static(content),
        }],
        &ImageConfig {
            architecture: "amd64".into(),
            ..ImageConfig::default()
        },
    )
    .expect("image");
    let tag: Reference = format!("{}/team/app:dev", registry.host())
        .parse()
        .expect("ref");
    image.push(client, &tag).await.expect("push");
    tag.with_digest(image.digest().clone())
}
