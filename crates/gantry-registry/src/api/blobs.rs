//! Blobs and uploads: monolithic, chunked (with `Content-Range` checks) and mounted, each blob
//! hashed and checked against its digest before it is stored.

use std::fmt::Write as _;
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use gantry_oci::Digest;
use tokio::io::AsyncWriteExt as _;

use super::{ApiError, ApiResult, AppState, headers, lock, param, parse_digest, query};
use crate::store::BlobSource;

pub struct Upload {
    repository: String,
    path: PathBuf,
    size: u64,
}

fn blob_unknown(digest: &Digest, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
        format!("blob {digest} is not in {name}"),
    )
}

fn upload_unknown(id: &str, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
        format!("no upload {id} in {name}"),
    )
}

pub async fn get(state: &AppState, name: &str, digest: &str, head: bool) -> ApiResult {
    let digest = parse_digest(digest)?;
    let (source, size) = {
        let store = lock(&state.store);
        let linked = store
            .repositories
            .get(name)
            .is_some_and(|r| r.blobs.contains(&digest) || r.manifests.contains_key(&digest));
        match (linked, store.blob_source(&digest), store.blob_size(&digest)) {
            (true, Some(source), Some(size)) => (source, size),
            _ => return Err(blob_unknown(&digest, name)),
        }
    };
    let map = headers(&[
        ("content-type", "application/octet-stream".to_owned()),
        ("docker-content-digest", digest.to_string()),
        ("content-length", size.to_string()),
    ]);
    if head {
        return Ok((StatusCode::OK, map).into_response());
    }
    let body = match source {
        BlobSource::Bytes(bytes) => Body::from(bytes),
        BlobSource::File(path) => {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(ApiError::internal)?;
            Body::from_stream(tokio_util::io::ReaderStream::new(file))
        }
    };
    Ok((StatusCode::OK, map, body).into_response())
}

pub fn delete(state: &AppState, name: &str, digest: &str) -> ApiResult {
    let digest = parse_digest(digest)?;
    let mut store = lock(&state.store);
    if !store
        .repositories
        .get_mut(name)
        .is_some_and(|r| r.blobs.remove(&digest))
    {
        return Err(blob_unknown(&digest, name));
    }
    store.persist().map_err(ApiError::internal)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().fold(String::new(), |mut id, b| {
        let _ = write!(id, "{b:02x}");
        id
    })
}

fn upload_response(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    let range = if size == 0 {
        "0-0".to_owned()
    } else {
        format!("0-{}", size - 1)
    };
    let map = headers(&[
        ("location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("docker-upload-uuid", id.to_owned()),
        ("range", range),
        ("content-length", "0".to_owned()),
    ]);
    (status, map).into_response()
}

fn link(state: &AppState, name: &str, digest: &Digest) -> ApiResult<()> {
    let mut store = lock(&state.store);
    store
        .repositories
        .entry(name.to_owned())
        .or_default()
        .blobs
        .insert(digest.clone());
    store.persist().map_err(ApiError::internal)
}

fn created(name: &str, digest: &Digest) -> Response {
    let map = headers(&[
        ("location", format!("/v2/{name}/blobs/{digest}")),
        ("docker-content-digest", digest.to_string()),
        ("content-length", "0".to_owned()),
    ]);
    (StatusCode::CREATED, map).into_response()
}

pub async fn start_upload(state: &AppState, name: &str, request: Request) -> ApiResult {
    let params = query(&request);
    if let (Some(mount), Some(from)) = (param(&params, "mount"), param(&params, "from")) {
        let digest = parse_digest(mount)?;
        let present = {
            let store = lock(&state.store);
            store.has_blob(&digest)
                && store
                    .repositories
                    .get(from)
                    .is_some_and(|r| r.blobs.contains(&digest))
        };
        if present {
            link(state, name, &digest)?;
            return Ok(created(name, &digest));
        }
        // Not mountable: open a normal upload (202), as the spec says.
    }
    let id = new_id();
    let path = lock(&state.store).spool.join(&id);
    tokio::fs::File::create(&path)
        .await
        .map_err(ApiError::internal)?;
    lock(&state.uploads).insert(
        id.clone(),
        Upload {
            repository: name.to_owned(),
            path,
            size: 0,
        },
    );
    if let Some(digest) = param(&params, "digest").map(str::to_owned) {
        // A monolithic upload: the whole blob in the POST.
        return complete(state, name, &id, &digest, request.into_body()).await;
    }
    Ok(upload_response(StatusCode::ACCEPTED, name, &id, 0))
}

/// Appends a request body to the upload's spool file; returns the new size.
async fn append(state: &AppState, name: &str, id: &str, body: Body) -> ApiResult<u64> {
    let path = lock(&state.uploads)
        .get(id)
        .map(|u| u.path.clone())
        .ok_or_else(|| upload_unknown(id, name))?;
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await
        .map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    let mut added = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                e.to_string(),
            )
        })?;
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
        added += chunk.len() as u64;
    }
    file.flush().await.map_err(ApiError::internal)?;
    let mut uploads = lock(&state.uploads);
    let upload = uploads
        .get_mut(id)
        .ok_or_else(|| upload_unknown(id, name))?;
    upload.size += added;
    Ok(upload.size)
}

fn owned_size(state: &AppState, name: &str, id: &str) -> ApiResult<u64> {
    lock(&state.uploads)
        .get(id)
        .filter(|u| u.repository == name)
        .map(|u| u.size)
        .ok_or_else(|| upload_unknown(id, name))
}

pub async fn patch_upload(state: &AppState, name: &str, id: &str, request: Request) -> ApiResult {
    let size = owned_size(state, name, id)?;
    if let Some(range) = request
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        let start = range
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(size) {
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("chunk {range} does not start where the upload ends ({size} bytes so far)"),
            ));
        }
    }
    let size = append(state, name, id, request.into_body()).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, id, size))
}

pub async fn finish_upload(state: &AppState, name: &str, id: &str, request: Request) -> ApiResult {
    owned_size(state, name, id)?;
    let Some(digest) = param(&query(&request), "digest").map(str::to_owned) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the final PUT needs ?digest=",
        ));
    };
    complete(state, name, id, &digest, request.into_body()).await
}

/// Appends the last bytes, checks the digest of the whole upload, and commits it. On any failure
/// the upload is discarded.
async fn complete(state: &AppState, name: &str, id: &str, digest: &str, body: Body) -> ApiResult {
    let result = finish(state, name, id, digest, body).await;
    if result.is_err() {
        let _ = cancel_upload(state, name, id);
    }
    result
}

async fn finish(state: &AppState, name: &str, id: &str, digest: &str, body: Body) -> ApiResult {
    let digest = parse_digest(digest)?;
    append(state, name, id, body).await?;
    let path = lock(&state.uploads)
        .get(id)
        .map(|u| u.path.clone())
        .ok_or_else(|| upload_unknown(id, name))?;
    let actual = hash_file(&path, &digest)
        .await
        .map_err(ApiError::internal)?;
    if actual != digest {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("expected {digest}, the upload hashes to {actual}"),
        ));
    }
    lock(&state.uploads).remove(id);
    lock(&state.store)
        .commit_spooled(&path, &digest)
        .map_err(ApiError::internal)?;
    link(state, name, &digest)?;
    Ok(created(name, &digest))
}

async fn hash_file(path: &std::path::Path, like: &Digest) -> std::io::Result<Digest> {
    use tokio::io::AsyncReadExt as _;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = like.hasher();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buffer[..n]);
    }
}

pub fn upload_status(state: &AppState, name: &str, id: &str) -> ApiResult {
    let size = owned_size(state, name, id)?;
    Ok(upload_response(StatusCode::NO_CONTENT, name, id, size))
}

pub fn cancel_upload(state: &AppState, name: &str, id: &str) -> ApiResult {
    let removed = {
        let mut uploads = lock(&state.uploads);
        match uploads.get(id) {
            Some(u) if u.repository == name => uploads.remove(id),
            _ => None,
        }
    };
    let upload = removed.ok_or_else(|| upload_unknown(id, name))?;
    let _ = std::fs::remove_file(upload.path);
    Ok(StatusCode::NO_CONTENT.into_response())
}
