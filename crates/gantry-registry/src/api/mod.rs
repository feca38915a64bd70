//! The HTTP API: `/v2/` routes parsed by hand (repository names hold slashes), auth, one handler
//! per route, and the spec's error codes.

mod blobs;
mod manifests;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gantry_oci::{Digest, Reference};
use serde_json::json;

use crate::auth::{AuthMode, Check, Need, Tokens};
use crate::store::Store;
use crate::uploads::{Limits, Uploads};

pub struct AppState {
    page_size: usize,
    store: Store,
    auth: AuthMode,
    tokens: Tokens,
    uploads: Uploads,
    /// The token endpoint's URL, advertised in bearer challenges.
    realm: String,
    /// Host names a request may name; `None` accepts any (a registry serving other hosts).
    hosts: Option<Vec<String>>,
}

/// How the HTTP side is set up.
pub struct Settings {
    pub page_size: usize,
    pub auth: AuthMode,
    pub tokens: Tokens,
    pub limits: Limits,
    pub realm: String,
    pub hosts: Option<Vec<String>>,
}

impl AppState {
    pub fn new(store: Store, settings: Settings) -> Self {
        Self {
            page_size: settings.page_size.max(1),
            store,
            auth: settings.auth,
            tokens: settings.tokens,
            uploads: Uploads::new(settings.limits),
            realm: settings.realm,
            hosts: settings.hosts,
        }
    }

    /// Ends upload sessions idle for longer than the limit.
    pub fn expire_idle_uploads(&self) -> usize {
        self.uploads.expire_idle()
    }
}

/// A random hex id (uploads, spool files).
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

/// An error answer: HTTP status, the spec's error code, a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    #[expect(
        clippy::needless_pass_by_value,
        reason = "used as map_err(ApiError::internal)"
    )]
    fn internal(error: std::io::Error) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            error.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"errors": [{"code": self.code, "message": self.message, "detail": null}]});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

type ApiResult<T = Response> = Result<T, ApiError>;

enum Route {
    Base,
    Token,
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, id: String },
    Manifest { name: String, reference: String },
    Tags { name: String },
    Referrers { name: String, digest: String },
}

impl Route {
    fn repository(&self) -> Option<&str> {
        match self {
            Self::Base | Self::Token => None,
            Self::Blob { name, .. }
            | Self::UploadStart { name }
            | Self::Upload { name, .. }
            | Self::Manifest { name, .. }
            | Self::Tags { name }
            | Self::Referrers { name, .. } => Some(name),
        }
    }
}

fn parse_route(path: &str) -> Option<Route> {
    if path == "/v2/" || path == "/v2" {
        return Some(Route::Base);
    }
    if path == "/token" {
        return Some(Route::Token);
    }
    let rest = path.strip_prefix("/v2/")?;
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        let (name, id) = (
            rest[..i].to_owned(),
            rest[i + "/blobs/uploads/".len()..].to_owned(),
        );
        return Some(if id.is_empty() {
            Route::UploadStart { name }
        } else {
            Route::Upload { name, id }
        });
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Some(Route::UploadStart {
            name: name.to_owned(),
        });
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags {
            name: name.to_owned(),
        });
    }
    let split = |marker: &str| {
        rest.rfind(marker)
            .map(|i| (rest[..i].to_owned(), rest[i + marker.len()..].to_owned()))
    };
    if let Some((name, digest)) = split("/blobs/") {
        return Some(Route::Blob { name, digest });
    }
    if let Some((name, reference)) = split("/manifests/") {
        return Some(Route::Manifest { name, reference });
    }
    split("/referrers/").map(|(name, digest)| Route::Referrers { name, digest })
}

fn check_name(name: &str) -> ApiResult<()> {
    match format!("localhost/{name}").parse::<Reference>() {
        Ok(r) if r.repository() == name => Ok(()),
        Ok(_) | Err(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name {name:?}"),
        )),
    }
}

fn parse_digest(text: &str) -> ApiResult<Digest> {
    text.parse::<Digest>()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string()))
}

fn query(request: &Request) -> Vec<(String, String)> {
    let query = request.uri().query().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(*name, value);
        }
    }
    map
}

async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let mut response = match answer(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// The host part (no port) of a `Host` header or URI authority, lowercased.
pub(crate) fn host_name(authority: &str) -> String {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    };
    host.to_ascii_lowercase()
}

/// Refuses a request that names a host this registry does not serve (a DNS-rebinding page) or
/// comes from a web page of another origin (a cross-site POST): on loopback, only loopback
/// names are served, and browsers are never clients.
fn check_host(state: &AppState, request: &Request) -> ApiResult<()> {
    let Some(hosts) = &state.hosts else {
        return Ok(());
    };
    let allowed = |host: &str| {
        let name = host_name(host);
        name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            || hosts.contains(&name)
    };
    let denied = |what: String| ApiError::new(StatusCode::FORBIDDEN, "DENIED", what);
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("(not ASCII)").to_owned())
        .or_else(|| request.uri().authority().map(ToString::to_string));
    if let Some(host) = host
        && !allowed(&host)
    {
        return Err(denied(format!(
            "this registry serves loopback names only, not {host:?}"
        )));
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not ASCII)");
        let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
        if !allowed(authority) {
            return Err(denied(format!(
                "requests from web pages of {origin:?} are refused"
            )));
        }
    }
    Ok(())
}

async fn answer(state: &AppState, request: Request) -> ApiResult {
    check_host(state, &request)?;
    let path = request.uri().path().to_owned();
    let route = parse_route(&path).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no route for {path}"),
        )
    })?;
    if let Some(name) = route.repository() {
        check_name(name)?;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if matches!(route, Route::Token) {
        let scopes: Vec<String> = query(&request)
            .into_iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v)
            .collect();
        return match state
            .tokens
            .issue(&state.auth, authorization.as_deref(), &scopes)
        {
            Some(token) => {
                let expires_in = state.tokens.lifetime.as_secs().max(1);
                Ok(axum::Json(
                    json!({"token": token, "access_token": token, "expires_in": expires_in}),
                )
                .into_response())
            }
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "bad credentials",
            )),
        };
    }
    let method = request.method().clone();
    let need = if matches!(method, Method::GET | Method::HEAD) {
        Need::Pull
    } else {
        Need::Push
    };
    if let Check::Challenge(challenge) = state.tokens.check(
        &state.auth,
        authorization.as_deref(),
        &state.realm,
        route.repository(),
        need,
    ) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        return Ok(response);
    }
    dispatch(state, route, request, authorization.as_deref()).await
}

async fn dispatch(
    state: &AppState,
    route: Route,
    request: Request,
    authorization: Option<&str>,
) -> ApiResult {
    let method = request.method().clone();
    let head = method == Method::HEAD;
    match (route, method) {
        (Route::Base, _) => Ok(axum::Json(json!({})).into_response()),
        (Route::Blob { name, digest }, Method::GET | Method::HEAD) => {
            blobs::get(state, &name, &digest, head).await
        }
        (Route::Blob { name, digest }, Method::DELETE) => {
            blobs::delete(state, &name, &digest).await
        }
        (Route::UploadStart { name }, Method::POST) => {
            // A mount reads the source repository: the client must be allowed to pull from it.
            let may_read = |from: &str| {
                check_name(from).is_ok()
                    && state
                        .tokens
                        .allows(&state.auth, authorization, Some(from), Need::Pull)
            };
            blobs::start_upload(state, &name, request, may_read).await
        }
        (Route::Upload { name, id }, Method::PATCH) => {
            blobs::patch_upload(state, &name, &id, request).await
        }
        (Route::Upload { name, id }, Method::PUT) => {
            blobs::finish_upload(state, &name, &id, request).await
        }
        (Route::Upload { name, id }, Method::GET) => blobs::upload_status(state, &name, &id),
        (Route::Upload { name, id }, Method::DELETE) => blobs::cancel_upload(state, &name, &id),
        (Route::Manifest { name, reference }, Method::GET | Method::HEAD) => {
            manifests::get(state, &name, &reference, head).await
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            manifests::put(state, &name, &reference, request).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            manifests::delete(state, &name, &reference).await
        }
        (Route::Tags { name }, Method::GET) => manifests::list_tags(state, &name, &request),
        (Route::Referrers { name, digest }, Method::GET) => {
            manifests::referrers(state, &name, &digest, &request)
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "method not allowed here",
        )),
    }
}
