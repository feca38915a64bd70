//! Manifests (checked against their digest, refused while a blob or child they name is missing),
//! tags with `Link` pagination, and the referrers API.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use gantry_oci::Digest;
use gantry_oci::manifest::{
    DOCKER_LIST, DOCKER_MANIFEST, MANIFEST_LIMIT, ManifestFields, OCI_INDEX, OCI_MANIFEST,
};
use gantry_oci::reference::is_valid_tag;
use serde_json::json;

use super::{ApiError, ApiResult, AppState, headers, param, parse_digest, query};
use crate::store::{ManifestInfo, Repositories};

const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

fn manifest_unknown(reference: &str, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
        format!("manifest {reference} is not in {name}"),
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
}

/// The digest a manifest reference points at in `name`.
fn resolve(repos: &Repositories, name: &str, reference: &str) -> ApiResult<Digest> {
    let repo = repos
        .get(name)
        .ok_or_else(|| manifest_unknown(reference, name))?;
    if reference.contains(':') {
        let digest = parse_digest(reference)?;
        return if repo.manifests.contains_key(&digest) {
            Ok(digest)
        } else {
            Err(manifest_unknown(reference, name))
        };
    }
    repo.tags
        .get(reference)
        .cloned()
        .ok_or_else(|| manifest_unknown(reference, name))
}

pub async fn get(state: &AppState, name: &str, reference: &str, head: bool) -> ApiResult {
    let (digest, info) = state.store.read(|repos| {
        let digest = resolve(repos, name, reference)?;
        let info = repos
            .get(name)
            .and_then(|r| r.manifests.get(&digest))
            .cloned()
            .ok_or_else(|| manifest_unknown(reference, name))?;
        Ok::<_, ApiError>((digest, info))
    })?;
    let bytes = state
        .store
        .read_small(&digest)
        .await
        .map_err(ApiError::internal)?;
    let map = headers(&[
        ("content-type", info.media_type.clone()),
        ("docker-content-digest", digest.to_string()),
        ("content-length", bytes.len().to_string()),
    ]);
    Ok(if head {
        (StatusCode::OK, map).into_response()
    } else {
        (StatusCode::OK, map, bytes).into_response()
    })
}

pub async fn put(state: &AppState, name: &str, reference: &str, request: Request) -> ApiResult {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
        .unwrap_or_default();
    let limit = usize::try_from(MANIFEST_LIMIT).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("a manifest may be at most {MANIFEST_LIMIT} bytes"),
            )
        })?;
    let (digest, subject) = store_manifest(state, name, reference, &content_type, bytes).await?;
    let mut pairs = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
        ("content-length", "0".to_owned()),
    ];
    if let Some(subject) = subject {
        pairs.push(("oci-subject", subject.to_string()));
    }
    Ok((StatusCode::CREATED, headers(&pairs)).into_response())
}

/// Where a pushed manifest goes: the digest it is stored under (the reference's own when it is a
/// digest, checked against the body; else SHA-256 of the body) and the tag to set, if any.
fn target(reference: &str, bytes: &[u8]) -> ApiResult<(Digest, Option<String>)> {
    if reference.contains(':') {
        let wanted = parse_digest(reference)?;
        let actual = wanted.hash_like(bytes);
        if actual != wanted {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("expected {wanted}, the manifest hashes to {actual}"),
            ));
        }
        return Ok((wanted, None));
    }
    if is_valid_tag(reference) {
        return Ok((Digest::sha256(bytes), Some(reference.to_owned())));
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "TAG_INVALID",
        format!("invalid tag {reference:?}"),
    ))
}

/// Refuses a manifest whose fields belong to the other kind: an image manifest listing
/// `manifests`, an index carrying `config` or `layers` (either would skip the checks of its kind).
fn check_shape(bytes: &[u8], is_index: bool) -> ApiResult<()> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a JSON manifest: {e}")))?;
    let has = |key: &str| value.get(key).is_some();
    if is_index {
        if let Some(key) = ["config", "layers"].into_iter().find(|k| has(k)) {
            return Err(invalid(format!(
                "an index may not carry {key:?} (it lists manifests)"
            )));
        }
    } else if has("manifests") {
        return Err(invalid(
            "an image manifest may not carry \"manifests\" (push an index with the index media type)",
        ));
    }
    Ok(())
}

async fn store_manifest(
    state: &AppState,
    name: &str,
    reference: &str,
    content_type: &str,
    bytes: Bytes,
) -> ApiResult<(Digest, Option<Digest>)> {
    if !MANIFEST_TYPES.contains(&content_type) {
        return Err(invalid(format!(
            "unsupported manifest media type {content_type:?} (expected one of {})",
            MANIFEST_TYPES.join(", ")
        )));
    }
    let fields: ManifestFields =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not a JSON manifest: {e}")))?;
    if fields.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    if let Some(declared) = &fields.media_type
        && declared != content_type
    {
        return Err(invalid(format!(
            "mediaType {declared:?} differs from Content-Type {content_type:?}"
        )));
    }
    let is_index = content_type == OCI_INDEX || content_type == DOCKER_LIST;
    check_shape(&bytes, is_index)?;
    let (digest, tag) = target(reference, &bytes)?;
    let missing =
        |what: String| ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", what);
    state.store.read(|repos| {
        let empty = crate::store::Repository::default();
        let repo = repos.get(name).unwrap_or(&empty);
        if is_index {
            if let Some(child) = fields
                .manifests
                .iter()
                .find(|m| !repo.manifests.contains_key(&m.digest))
            {
                return Err(missing(format!(
                    "child manifest {} is not in {name}",
                    child.digest
                )));
            }
        } else {
            let config = fields
                .config
                .as_ref()
                .ok_or_else(|| invalid("an image manifest needs a config"))?;
            if let Some(blob) = std::iter::once(config)
                .chain(&fields.layers)
                .find(|b| !repo.blobs.contains(&b.digest))
            {
                return Err(missing(format!("blob {} is not in {name}", blob.digest)));
            }
        }
        Ok(())
    })?;
    // The referrers API reports artifactType, else the config's media type (OCI image spec).
    let artifact_type = fields.artifact_type.clone().or_else(|| {
        fields
            .config
            .as_ref()
            .map(|c| c.media_type.clone())
            .filter(|t| fields.subject.is_some() && t != "application/vnd.oci.image.config.v1+json")
    });
    let info = ManifestInfo {
        media_type: content_type.to_owned(),
        size: bytes.len() as u64,
        subject: fields.subject.as_ref().map(|s| s.digest.clone()),
        artifact_type,
        annotations: fields.annotations.clone(),
    };
    state
        .store
        .put_small(&digest, bytes)
        .await
        .map_err(ApiError::internal)?;
    state
        .store
        .change(|repos| {
            let entry = repos.entry(name.to_owned()).or_default();
            entry.manifests.insert(digest.clone(), info);
            if let Some(tag) = tag {
                entry.tags.insert(tag, digest.clone());
            }
        })
        .await
        .map_err(ApiError::internal)?;
    Ok((digest, fields.subject.map(|s| s.digest)))
}

pub async fn delete(state: &AppState, name: &str, reference: &str) -> ApiResult {
    let by_digest = reference.contains(':');
    state
        .store
        .change(|repos| {
            let digest = resolve(repos, name, reference)?;
            let repo = repos
                .get_mut(name)
                .ok_or_else(|| manifest_unknown(reference, name))?;
            if by_digest {
                repo.manifests.remove(&digest);
                repo.tags.retain(|_, d| *d != digest);
            } else {
                repo.tags.remove(reference);
            }
            Ok::<_, ApiError>(())
        })
        .await
        .map_err(ApiError::internal)??;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub fn list_tags(state: &AppState, name: &str, request: &Request) -> ApiResult {
    let params = query(request);
    let last = param(&params, "last");
    let n = param(&params, "n").and_then(|n| n.parse::<usize>().ok());
    let (tags, more) = state.store.read(|repos| {
        let repo = repos.get(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                format!("repository {name} is not known"),
            )
        })?;
        let mut tags: Vec<String> = repo
            .tags
            .keys()
            .filter(|t| last.is_none_or(|l| t.as_str() > l))
            .cloned()
            .collect();
        let more = n.is_some_and(|n| tags.len() > n);
        if let Some(n) = n {
            tags.truncate(n);
        }
        Ok::<_, ApiError>((tags, more))
    })?;
    let mut map = HeaderMap::new();
    if let (true, Some(n), Some(last)) = (more, n, tags.last()) {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("n", &n.to_string())
            .append_pair("last", last)
            .finish();
        if let Ok(value) =
            HeaderValue::from_str(&format!("</v2/{name}/tags/list?{query}>; rel=\"next\""))
        {
            map.insert(header::LINK, value);
        }
    }
    Ok((
        StatusCode::OK,
        map,
        axum::Json(json!({"name": name, "tags": tags})),
    )
        .into_response())
}

pub fn referrers(state: &AppState, name: &str, digest: &str, request: &Request) -> ApiResult {
    let subject = parse_digest(digest)?;
    let params = query(request);
    let wanted = param(&params, "artifactType");
    let entry = |(digest, info): (&Digest, &ManifestInfo)| {
        let mut entry = json!({"mediaType": info.media_type, "digest": digest, "size": info.size});
        if let Some(kind) = &info.artifact_type {
            entry["artifactType"] = json!(kind);
        }
        if let Some(annotations) = &info.annotations {
            entry["annotations"] = json!(annotations);
        }
        entry
    };
    // Pages in digest order; `last` is the cursor the `Link` header hands the client.
    let last = param(&params, "last");
    let (manifests, cursor) = state.store.read(|repos| {
        let mut matching: Vec<(&Digest, &ManifestInfo)> = repos
            .get(name)
            .map(|repo| {
                repo.manifests
                    .iter()
                    .filter(|(_, info)| info.subject.as_ref() == Some(&subject))
                    .filter(|(_, info)| {
                        wanted.is_none_or(|w| info.artifact_type.as_deref() == Some(w))
                    })
                    .filter(|(d, _)| last.is_none_or(|l| d.as_str() > l))
                    .collect()
            })
            .unwrap_or_default();
        let more = matching.len() > state.page_size;
        matching.truncate(state.page_size);
        let cursor = matching
            .last()
            .filter(|_| more)
            .map(|(digest, _)| (*digest).clone());
        let manifests: Vec<serde_json::Value> = matching.into_iter().map(entry).collect();
        (manifests, cursor)
    });
    let mut map = headers(&[("content-type", OCI_INDEX.to_owned())]);
    if let Some(cursor) = cursor {
        // Every value percent-encoded: an artifact type such as `application/vnd.x+json` holds
        // `+` and `/`, which a query reads as a space and a separator.
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("last", cursor.as_str());
        if let Some(wanted) = wanted {
            query.append_pair("artifactType", wanted);
        }
        let link = format!(
            "</v2/{name}/referrers/{subject}?{}>; rel=\"next\"",
            query.finish()
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            map.insert(header::LINK, value);
        }
    }
    if wanted.is_some() {
        map.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    Ok((StatusCode::OK, map, body.to_string()).into_response())
}
