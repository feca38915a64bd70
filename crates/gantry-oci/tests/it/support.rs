use bytes::Bytes;
use gantry_oci::manifest::{OCI_INDEX, OCI_MANIFEST};
use gantry_oci::{Client, ClientOptions, Credential, Credentials, Digest, Manifest, Reference};
use gantry_testkit::{Auth, Registry};
use serde_json::json;

pub fn client_for(registry: &Registry) -> Client {
    client_for_all(&[registry])
}

/// One client that reaches every registry given, with their credentials.
pub fn client_for_all(registries: &[&Registry]) -> Client {
    let mut options = ClientOptions {
        retry: gantry_http::retry::Policy {
            first_delay: std::time::Duration::from_millis(10),
            ..gantry_http::retry::Policy::default()
        },
        ..ClientOptions::default()
    };
    let mut credentials = Credentials::anonymous();
    for registry in registries {
        match registry.auth() {
            Auth::Tls => options.ca_files.extend(registry.ca_file()),
            _ => options.plain_http.push(registry.host()),
        }
        if let Some((user, pass)) = registry.credentials() {
            credentials = credentials.with(
                &registry.host(),
                Credential::Basic {
                    username: user.to_owned(),
                    password: gantry_secret::Secret::new(pass),
                },
            );
        }
    }
    Client::new(options, credentials).expect("client")
}

pub fn reference(registry: &Registry, path: &str) -> Reference {
    format!("{}/{path}", registry.host())
        .parse()
        .expect("reference")
}

/// Pushes a small image with one layer per entry of `layers`; tags it when `target` has a tag.
pub async fn push_image(client: &Client, target: &Reference, layers: &[&[u8]]) -> Manifest {
    let config = Bytes::from(
        serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}))
            .expect("json"),
    );
    let config_digest = Digest::sha256(&config);
    client
        .upload_blob(target, &config_digest, config.clone())
        .await
        .expect("config blob");
    let mut descriptors = Vec::new();
    for layer in layers {
        let digest = Digest::sha256(layer);
        client
            .upload_blob(target, &digest, Bytes::copy_from_slice(layer))
            .await
            .expect("layer blob");
        descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": layer.len()}));
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    });
    put(client, target, body, OCI_MANIFEST).await
}

/// Pushes an index over `children`; tags it when `target` has a tag.
pub async fn push_index(
    client: &Client,
    target: &Reference,
    children: &[(&Manifest, &str)],
) -> Manifest {
    let manifests: Vec<_> = children
        .iter()
        .map(|(m, arch)| {
            json!({"mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len(), "platform": {"os": "linux", "architecture": arch}})
        })
        .collect();
    put(
        client,
        target,
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
        OCI_INDEX,
    )
    .await
}

async fn put(
    client: &Client,
    target: &Reference,
    body: serde_json::Value,
    media_type: &str,
) -> Manifest {
    // Pretty-printed on purpose: a client that re-serialises would change the digest.
    let manifest = Manifest::new(serde_json::to_vec_pretty(&body).expect("json"), media_type);
    client
        .put_manifest(&target.with_digest(manifest.digest.clone()), &manifest)
        .await
        .expect("put by digest");
    if target.tag().is_some() {
        client
            .put_manifest(target, &manifest)
            .await
            .expect("put by tag");
    }
    manifest
}

pub fn layer(seed: &str, size: usize) -> Vec<u8> {
    seed.bytes().cycle().take(size).collect()
}
