//! A token server for the registry's bearer flow (the GHCR / Docker Hub one), as distribution's
//! `auth: token` expects: ES256 JWTs with an `x5c` header whose certificate is in the registry's
//! `rootcertbundle`, `aud` = service, `iss` = issuer, and an `access` claim per granted scope.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use crate::pki::IssuedCert;
use crate::server::ServerThread;

/// The service the token server issues tokens for.
pub const SERVICE: &str = "gantry-testkit-registry";
/// The issuer its tokens name.
pub const ISSUER: &str = "gantry-testkit-token-server";
/// The `OAuth2` refresh token (Docker's `identitytoken`) the token server accepts.
pub const REFRESH_TOKEN: &str = "gantry-testkit-refresh-7d1e";

struct Issuer {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    basic: String,
    issued: AtomicUsize,
}

/// A registry token server (RS256 JWTs), as distribution's token auth expects.
pub struct TokenServer {
    /// Its URL, for the registry's realm.
    pub realm: String,
    issuer: Arc<Issuer>,
    _server: ServerThread,
}

impl TokenServer {
    /// Starts a token server for `username`/`password`, signing with `signing`.
    pub fn start(username: &str, password: &str, signing: &IssuedCert) -> anyhow::Result<Self> {
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &signing.key_pkcs8_der)
                .map_err(|e| anyhow::anyhow!("loading the token signing key: {e}"))?;
        let issuer = Arc::new(Issuer {
            key,
            cert_der: signing.cert_der.clone(),
            basic: format!(
                "Basic {}",
                STANDARD.encode(format!("{username}:{password}"))
            ),
            issued: AtomicUsize::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let realm = format!("http://{}/token", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token).post(refresh))
            .with_state(issuer.clone());
        let server = ServerThread::spawn(listener, app)?;
        Ok(Self {
            realm,
            issuer,
            _server: server,
        })
    }

    /// How many tokens it has issued.
    pub fn tokens_issued(&self) -> usize {
        self.issuer.issued.load(Ordering::SeqCst)
    }
}

async fn token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let authorized =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(issuer.basic.as_str());
    if !authorized {
        let body =
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "bad or missing credentials"}]});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let service = pairs
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.as_str());
    if service != Some(SERVICE) {
        let body = json!({"errors": [{"code": "DENIED", "message": format!("unknown service {service:?}")}]});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    // Each `scope` is `type:name:actions`; the name itself may hold colons (a port).
    let access: Vec<serde_json::Value> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .filter_map(access_claim)
        .collect();
    match sign(&issuer, &access) {
        Ok(jwt) => {
            issuer.issued.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"token": jwt, "access_token": jwt, "expires_in": 300}))
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The `OAuth2` flow of Docker identity tokens: `POST /token` with `grant_type=refresh_token`.
async fn refresh(State(issuer): State<Arc<Issuer>>, body: String) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("refresh_token") || get("refresh_token") != Some(REFRESH_TOKEN) {
        let body = json!({"error": "invalid_grant"});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    if get("service") != Some(SERVICE) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    }
    let access: Vec<serde_json::Value> = get("scope")
        .unwrap_or_default()
        .split(' ')
        .filter_map(access_claim)
        .collect();
    match sign(&issuer, &access) {
        Ok(jwt) => {
            issuer.issued.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"access_token": jwt, "expires_in": 300})).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The `access` claim entry for one `type:name:actions` scope (the name may hold colons).
fn access_claim(scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
}

fn sign(issuer: &Issuer, access: &[serde_json::Value]) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&issuer.cert_der)]});
    let claims = json!({
        "iss": ISSUER,
        "sub": "gantry-test",
        "aud": SERVICE,
        "iat": now,
        "nbf": now.saturating_sub(60),
        "exp": now + 300,
        "jti": format!("{now}-{}", issuer.issued.load(Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
    );
    let signature = issuer
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map_err(|e| anyhow::anyhow!("signing the token: {e}"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}
