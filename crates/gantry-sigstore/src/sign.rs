//! Signing images the way cosign v3 does: an in-toto statement for the image digest (predicate
//! `https://sigstore.dev/cosign/sign/v1`) in a DSSE envelope, in a Sigstore bundle v0.3, stored as
//! a referrer of the image (with the fallback tag where the registry has no referrers API).
//!
//! Keyless signing goes through sigstore-sign (Fulcio certificate for the OIDC identity, Rekor
//! entry, optional RFC 3161 timestamp) on gantry's own HTTP client. Key-based signing is done here:
//! the key signs the DSSE envelope, Rekor records it unless told not to, and the bundle names the
//! key by a hint.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use gantry_oci::{Client, Digest, Manifest, Reference};
use gantry_secret::Secret;
use serde_json::{Value, json};
use sigstore_sign::bundle::BundleV03;
use sigstore_sign::bundle::builder::VerificationMaterialV03;
use sigstore_sign::crypto::KeyPair;
use sigstore_sign::oidc::IdentityToken;
use sigstore_sign::rekor::{DsseEntry, RekorClient};
use sigstore_sign::types::bundle::SignatureContent;
use sigstore_sign::types::{Bundle, DsseEnvelope, DsseSignature, KeyId, KindVersion, PayloadBytes};
use sigstore_sign::{SigningContext, SigningServices, SigstoreInstance};

use crate::SigstoreError;

/// cosign v3's predicate type for an image signature.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The media type of a v0.3 bundle: the referrer's artifact type and its layer's media type.
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";

type Result<T> = std::result::Result<T, SigstoreError>;

fn invalid(
    what: impl Into<String>,
    expected: &'static str,
    reason: impl std::fmt::Display,
) -> SigstoreError {
    SigstoreError::Invalid {
        what: what.into(),
        expected,
        reason: reason.to_string(),
    }
}

/// Where keyless signing gets its certificate, its log entry and its timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    /// Fulcio's URL.
    pub fulcio: String,
    /// Rekor's URL.
    pub rekor: String,
    /// The timestamp authority's URL, if one is used.
    pub tsa: Option<String>,
    /// Rekor v2 (tiles), which needs a timestamp authority; v1 otherwise.
    pub rekor_v2: bool,
}

impl Services {
    /// The Sigstore public-good instance, from the signing config compiled into gantry.
    pub fn production() -> Result<Self> {
        let services = SigningServices::from_embedded(SigstoreInstance::PublicGood)
            .map_err(|e| invalid("the embedded signing config", "signing config", e))?;
        Ok(Self::of(&services))
    }

    /// A protobuf-specs `SigningConfig` v0.2 file: its first valid Fulcio, Rekor and (when it
    /// names one) timestamp authority. A config without a TSA is accepted for Rekor v1, whose
    /// entries carry their own time.
    pub fn from_signing_config(path: &Path) -> Result<Self> {
        let json = crate::read(path)?;
        let what = path.display().to_string();
        let config = sigstore_sign::trust_root::SigningConfig::from_json(&json)
            .map_err(|e| invalid(&what, "signing config", e))?;
        let fulcio = config
            .fulcio_url()
            .ok_or_else(|| invalid(&what, "signing config", "it names no Fulcio (caUrls)"))?;
        let rekor = config
            .rekor_url(None)
            .ok_or_else(|| invalid(&what, "signing config", "it names no Rekor (rekorTlogUrls)"))?;
        let rekor_v2 = match rekor.major_api_version {
            1 => false,
            2 => true,
            other => {
                return Err(invalid(
                    &what,
                    "signing config",
                    format!("Rekor API version {other} is not supported (1 or 2)"),
                ));
            }
        };
        let tsa = config.tsa_url().map(|e| e.url.clone());
        if rekor_v2 && tsa.is_none() {
            return Err(invalid(
                &what,
                "signing config",
                "Rekor v2 needs a timestamp authority and it names none (tsaUrls)",
            ));
        }
        Ok(Self {
            fulcio: fulcio.url.clone(),
            rekor: rekor.url.clone(),
            tsa,
            rekor_v2,
        })
    }

    fn of(services: &SigningServices) -> Self {
        Self {
            fulcio: services.fulcio_url().to_owned(),
            rekor: services.rekor_url().to_owned(),
            tsa: services.tsa_url().map(str::to_owned),
            rekor_v2: services.rekor_api_version() == sigstore_sign::rekor::RekorApiVersion::V2,
        }
    }

    fn signing(&self) -> SigningServices {
        let version = if self.rekor_v2 {
            sigstore_sign::rekor::RekorApiVersion::V2
        } else {
            sigstore_sign::rekor::RekorApiVersion::V1
        };
        let mut services =
            SigningServices::new(&self.fulcio, &self.rekor).with_rekor(&self.rekor, version);
        if let Some(tsa) = &self.tsa {
            services = services.with_tsa_url(tsa);
        }
        services
    }
}

/// A private key to sign with. Its `Debug` shows only the public half's hint.
pub struct SigningKey {
    pair: KeyPair,
    hint: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An ECDSA P-256 key from PEM: PKCS#8 (`PRIVATE KEY`), or cosign's encrypted format
    /// (`ENCRYPTED SIGSTORE PRIVATE KEY`, `ENCRYPTED COSIGN PRIVATE KEY`) with `password`.
    pub fn from_pem(what: &str, pem: &str, password: Option<&Secret>) -> Result<Self> {
        let (label, der) = crate::keys::pem_block(what, pem)?;
        let pkcs8 = match label.as_str() {
            "PRIVATE KEY" => der,
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let password = password.ok_or_else(|| {
                    invalid(
                        what,
                        "private key",
                        "it is encrypted: give its password (COSIGN_PASSWORD)",
                    )
                })?;
                crate::keys::decrypt_cosign(what, &der, password)?
            }
            "EC PRIVATE KEY" => {
                return Err(invalid(
                    what,
                    "PKCS#8 private key",
                    "it is a SEC1 EC key; convert it with `openssl pkcs8 -topk8 -nocrypt`",
                ));
            }
            other => {
                return Err(invalid(
                    what,
                    "private key",
                    format!("its PEM block is {other:?}"),
                ));
            }
        };
        let pair = KeyPair::from_pkcs8_der(&pkcs8)
            .map_err(|e| invalid(what, "ECDSA P-256 or Ed25519 PKCS#8 key", e))?;
        Self::of(pair, what)
    }

    /// A fresh ECDSA P-256 key as an unencrypted PKCS#8 PEM (`PRIVATE KEY`), for a key file.
    pub fn generate_pem() -> Result<Secret> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
        let document = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .map_err(|e| SigstoreError::Signing(format!("generating a key: {e}")))?;
        let block = pem::Pem::new("PRIVATE KEY", document.as_ref());
        Ok(Secret::new(pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )))
    }

    fn of(pair: KeyPair, what: &str) -> Result<Self> {
        let public = pair
            .public_key_der()
            .map_err(|e| invalid(what, "private key", e))?;
        let hint = base64::engine::general_purpose::STANDARD.encode(sha2_256(public.as_bytes()));
        Ok(Self { pair, hint })
    }

    /// The signer that verifies this key's signatures.
    pub fn verifier(&self, tlog: bool) -> Result<crate::Signer> {
        let key = self
            .pair
            .public_key_der()
            .map_err(|e| SigstoreError::Signing(format!("the public key: {e}")))?;
        Ok(crate::Signer::Key { key, tlog })
    }

    /// A key from a PEM file.
    pub fn from_file(path: &Path, password: Option<&Secret>) -> Result<Self> {
        Self::from_pem(&path.display().to_string(), &crate::read(path)?, password)
    }

    /// The public key as PEM (what a verifier is given).
    pub fn public_pem(&self) -> Result<String> {
        self.pair
            .public_key_der()
            .map(|der| der.to_pem())
            .map_err(|e| SigstoreError::Signing(format!("the public key: {e}")))
    }
}

fn sha2_256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).to_vec()
}

/// Who signs.
#[derive(Debug)]
pub enum Identity {
    /// A Fulcio certificate for this OIDC token's identity.
    /// An OIDC token exchanged at Fulcio for a certificate.
    Keyless {
        /// The OIDC identity token.
        token: Secret,
        /// Fulcio, Rekor and the TSA to use.
        services: Services,
    },
    /// A key; its signature recorded in this Rekor (v1) unless `None`.
    Key {
        /// The private key.
        key: Box<SigningKey>,
        /// The Rekor to log in; `None`: not logged.
        rekor: Option<String>,
    },
}

/// The in-toto statement cosign v3 signs for an image: subject = the repository and digest.
pub fn image_statement(
    repository: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut predicate = json!({});
    if !annotations.is_empty() {
        predicate["annotations"] = json!(annotations);
    }
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": repository, "digest": {digest.algorithm(): digest.hex()}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": predicate,
    })
    .to_string()
    .into_bytes()
}

/// Signs an in-toto statement: a DSSE bundle v0.3.
pub async fn sign_statement(
    identity: &Identity,
    http: &reqwest::Client,
    statement: &[u8],
) -> Result<Bundle> {
    let failed = |service: &str, e: &dyn std::fmt::Display| {
        SigstoreError::Signing(format!("{service}: {e}"))
    };
    match identity {
        Identity::Keyless { token, services } => {
            let token = IdentityToken::from_jwt(token.expose())
                .map_err(|e| invalid("the identity token", "OIDC token (JWT)", e))?;
            let signer = SigningContext::new(services.signing())
                .with_http_client(http.clone())
                .signer(token);
            signer
                .sign_raw_statement(statement)
                .await
                .map_err(|e| failed("keyless signing", &e))
        }
        Identity::Key { key, rekor } => {
            let signature = key
                .pair
                .sign(&sigstore_sign::types::dsse::pae(IN_TOTO, statement))
                .map_err(|e| failed("signing with the key", &e))?;
            let envelope = DsseEnvelope::new(
                IN_TOTO,
                PayloadBytes::from_bytes(statement),
                DsseSignature::new(signature, KeyId::default()),
            );
            let mut bundle = BundleV03::new(
                VerificationMaterialV03::PublicKey {
                    hint: key.hint.clone(),
                },
                SignatureContent::DsseEnvelope(envelope.clone()),
            );
            if let Some(url) = rekor {
                let entry = key_dsse_entry(&envelope, &key.public_pem()?)?;
                let entry = log(url, http, KeyEntry::Dsse(entry)).await?;
                bundle = bundle.with_tlog_entry(entry);
            }
            Ok(bundle.into_bundle())
        }
    }
}

/// Signs `message` as cosign's legacy `.sig` does: a message-signature bundle (hashedrekord in
/// Rekor v1), which [`crate::legacy::annotations`] turns into the layer annotations.
pub async fn sign_message(
    identity: &Identity,
    http: &reqwest::Client,
    message: &[u8],
) -> Result<Bundle> {
    let failed = |service: &str, e: &dyn std::fmt::Display| {
        SigstoreError::Signing(format!("{service}: {e}"))
    };
    match identity {
        Identity::Keyless { token, services } => {
            if services.rekor_v2 {
                return Err(SigstoreError::Signing(
                    "a legacy .sig signature needs a Rekor v1 entry (old verifiers read its SET); give a Rekor v1 URL".to_owned(),
                ));
            }
            let token = IdentityToken::from_jwt(token.expose())
                .map_err(|e| invalid("the identity token", "OIDC token (JWT)", e))?;
            SigningContext::new(services.signing())
                .with_http_client(http.clone())
                .signer(token)
                .sign(message)
                .await
                .map_err(|e| failed("keyless signing", &e))
        }
        Identity::Key { key, rekor } => {
            let signature = key
                .pair
                .sign(message)
                .map_err(|e| failed("signing with the key", &e))?;
            let hash = sigstore_sign::types::Sha256Hash::from_hex(&{
                use sha2::Digest as _;
                hex::encode(sha2::Sha256::digest(message))
            })
            .map_err(|e| failed("hashing the message", &e))?;
            let mut bundle = BundleV03::new(
                VerificationMaterialV03::PublicKey {
                    hint: key.hint.clone(),
                },
                SignatureContent::MessageSignature(
                    sigstore_sign::types::bundle::MessageSignature::new(signature.clone())
                        .with_message_digest(sigstore_sign::types::bundle::MessageDigest::new(
                            sigstore_sign::types::HashAlgorithm::Sha2256,
                            hash.into(),
                        )),
                ),
            );
            if let Some(url) = rekor {
                let b64 = base64::engine::general_purpose::STANDARD;
                let entry: sigstore_sign::rekor::HashedRekord = serde_json::from_value(json!({
                    "apiVersion": "0.0.1",
                    "kind": "hashedrekord",
                    "spec": {
                        "data": {"hash": {"algorithm": "sha256", "value": hash.to_hex()}},
                        "signature": {
                            "content": b64.encode(signature.as_bytes()),
                            "publicKey": {"content": b64.encode(key.public_pem()?)},
                        },
                    },
                }))
                .map_err(|e| SigstoreError::Signing(e.to_string()))?;
                bundle =
                    bundle.with_tlog_entry(log(url, http, KeyEntry::HashedRekord(entry)).await?);
            }
            Ok(bundle.into_bundle())
        }
    }
}

/// A key-based entry for Rekor v1.
enum KeyEntry {
    Dsse(DsseEntry),
    HashedRekord(sigstore_sign::rekor::HashedRekord),
}

/// Logs `entry` in the Rekor v1 at `url`; the bundle's log entry for it.
async fn log(
    url: &str,
    http: &reqwest::Client,
    entry: KeyEntry,
) -> Result<sigstore_sign::types::TransparencyLogEntry> {
    let failed = |what: &str, e: &dyn std::error::Error| {
        SigstoreError::Signing(format!(
            "Rekor {url}{what}: {}\nhint: to sign with a key offline, or without a transparency log, pass --tlog-upload false (verifiers then need --insecure-ignore-tlog)",
            error_chain(e)
        ))
    };
    let rekor = RekorClient::builder(url)
        .with_http_client(http.clone())
        .build()
        .map_err(|e| failed("", &e))?;
    let (logged, kind) = match entry {
        KeyEntry::Dsse(entry) => (rekor.create_dsse_entry(entry).await, KindVersion::DsseV001),
        KeyEntry::HashedRekord(entry) => (
            rekor.create_entry(entry).await,
            KindVersion::HashedRekordV001,
        ),
    };
    let logged = match logged {
        Ok(logged) => logged,
        Err(e) => {
            // sigstore-rekor keeps only the top line of a transport error ("error sending
            // request"): ask the same URL once more to say why it could not be reached.
            let why = match http.get(url).send().await {
                Err(reached) => format!(" ({})", error_chain(&reached)),
                Ok(_) => String::new(),
            };
            return Err(failed(&why, &e));
        }
    };
    logged
        .to_bundle_entry(kind)
        .map_err(|e| failed("'s answer", &e))
}

/// An error and its causes, joined with `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A Rekor v1 `dsse` entry whose verifier is a public key (sigstore-rekor builds them only for
/// certificates).
fn key_dsse_entry(envelope: &DsseEnvelope, public_pem: &str) -> Result<DsseEntry> {
    let envelope =
        serde_json::to_string(envelope).map_err(|e| SigstoreError::Signing(e.to_string()))?;
    let entry: Value = json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {"proposedContent": {
            "envelope": envelope,
            "verifiers": [base64::engine::general_purpose::STANDARD.encode(public_pem)],
        }},
    });
    serde_json::from_value(entry).map_err(|e| SigstoreError::Signing(e.to_string()))
}

/// Stores `bundle` as a referrer of `image` (which carries its digest) the way cosign v3 does.
pub async fn attach(
    client: &Client,
    image: &Reference,
    bundle: &Bundle,
    predicate_type: &str,
) -> std::result::Result<Manifest, gantry_oci::OciError> {
    let subject = client.resolve(image).await?;
    let json = bundle
        .to_json()
        .map_err(|e| gantry_oci::OciError::Protocol(format!("serialising the bundle: {e}")))?;
    let content = match bundle.content {
        SignatureContent::DsseEnvelope(_) => "dsse-envelope",
        _ => "message-signature",
    };
    let annotations = BTreeMap::from([
        ("dev.sigstore.bundle.content".to_owned(), content.to_owned()),
        (
            "dev.sigstore.bundle.predicateType".to_owned(),
            predicate_type.to_owned(),
        ),
    ]);
    let artifact = gantry_oci::Artifact {
        artifact_type: BUNDLE_V03.to_owned(),
        layers: vec![gantry_oci::ArtifactLayer {
            media_type: BUNDLE_V03.to_owned(),
            bytes: json.into_bytes().into(),
            annotations: BTreeMap::new(),
        }],
        subject: Some(subject),
        annotations,
    };
    client.push_artifact(image, &artifact).await
}

/// An in-toto statement about `repository@digest` with `predicate` of `predicate_type`.
pub fn statement(
    repository: &str,
    digest: &Digest,
    predicate_type: &str,
    predicate: &Value,
) -> Vec<u8> {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": repository, "digest": {digest.algorithm(): digest.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
    .to_string()
    .into_bytes()
}

/// Why an attestation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// Reading or writing the registry.
    #[error(transparent)]
    Registry(#[from] gantry_oci::OciError),
    /// Signing.
    #[error(transparent)]
    Sign(#[from] SigstoreError),
}

/// The attestation of `target` (which carries its digest) whose signed statement is exactly
/// `statement`, if one is attached already.
pub async fn existing_attestation(
    client: &Client,
    target: &Reference,
    statement: &[u8],
    predicate_type: &str,
) -> std::result::Result<Option<Digest>, gantry_oci::OciError> {
    let referrers = client.referrers(target, Some(BUNDLE_V03)).await?;
    for descriptor in referrers.descriptors {
        let predicate = descriptor
            .annotations
            .as_ref()
            .and_then(|a| a.get("dev.sigstore.bundle.predicateType"));
        if predicate.is_some_and(|p| p != predicate_type) {
            continue;
        }
        let reference = target.with_digest(descriptor.digest.clone());
        let manifest = client.manifest(&reference).await?;
        let Some(layer) = manifest.fields()?.layers.into_iter().next() else {
            continue;
        };
        let bytes = client
            .blob(&reference, &layer.digest, crate::oci::BUNDLE_LIMIT)
            .await?;
        let bundle: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let payload = bundle["dsseEnvelope"]["payload"].as_str().unwrap_or("");
        if base64::engine::general_purpose::STANDARD
            .decode(payload)
            .is_ok_and(|p| p == statement)
        {
            return Ok(Some(descriptor.digest));
        }
    }
    Ok(None)
}

/// Signs `statement` and attaches it to `target` as an attestation of `predicate_type`, unless
/// the same statement is attached already: the attestation's referrer and whether it was there.
pub async fn attest(
    client: &Client,
    http: &reqwest::Client,
    identity: &Identity,
    target: &Reference,
    statement: &[u8],
    predicate_type: &str,
) -> std::result::Result<(Digest, bool), AttestError> {
    if let Some(existing) = existing_attestation(client, target, statement, predicate_type).await? {
        return Ok((existing, true));
    }
    let bundle = sign_statement(identity, http, statement).await?;
    let manifest = attach(client, target, &bundle, predicate_type).await?;
    Ok((manifest.digest, false))
}
