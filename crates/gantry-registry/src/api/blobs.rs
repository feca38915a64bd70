//! Blobs and uploads: monolithic, chunked (with `Content-Range` checks) and mounted, each blob
//! hashed and checked against its digest before it is stored.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use gantry_oci::Digest;
use tokio::io::AsyncWriteExt as _;

use super::{ApiError, ApiResult, AppState, headers, new_id, param, parse_digest, query};
use crate::uploads::{Lease, UploadError};

fn blob_unknown(digest: &Digest, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
        format!("blob {digest} is not in {name}"),
    )
}

fn upload_error(error: &UploadError, id: &str, name: &str) -> ApiError {
    match error {
        UploadError::Unknown => ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!("no upload {id} in {name}"),
        ),
        UploadError::Busy => ApiError::new(
            StatusCode::CONFLICT,
            "BLOB_UPLOAD_INVALID",
            format!("upload {id} is being written by another request: one request at a time"),
        ),
        UploadError::TooManySessions { limit } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            format!("{limit} uploads are in progress already: finish or cancel one first"),
        ),
        UploadError::TooLarge { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("a blob may be at most {limit} bytes; upload {id} was discarded"),
        ),
        UploadError::OverBudget { budget } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            format!(
                "unfinished uploads may hold {budget} bytes together; upload {id} was discarded"
            ),
        ),
    }
}

pub async fn get(state: &AppState, name: &str, digest: &str, head: bool) -> ApiResult {
    let digest = parse_digest(digest)?;
    let linked = state.store.read(|repos| {
        repos
            .get(name)
            .is_some_and(|r| r.blobs.contains(&digest) || r.manifests.contains_key(&digest))
    });
    let found = if linked {
        state.store.blob_file(&digest).await
    } else {
        None
    };
    let Some((path, size)) = found else {
        return Err(blob_unknown(&digest, name));
    };
    let map = headers(&[
        ("content-type", "application/octet-stream".to_owned()),
        ("docker-content-digest", digest.to_string()),
        ("content-length", size.to_string()),
    ]);
    if head {
        return Ok((StatusCode::OK, map).into_response());
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((StatusCode::OK, map, body).into_response())
}

pub async fn delete(state: &AppState, name: &str, digest: &str) -> ApiResult {
    let digest = parse_digest(digest)?;
    let removed = state
        .store
        .change(|repos| repos.get_mut(name).is_some_and(|r| r.blobs.remove(&digest)))
        .await
        .map_err(ApiError::internal)?;
    if !removed {
        return Err(blob_unknown(&digest, name));
    }
    Ok(StatusCode::ACCEPTED.into_response())
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

async fn link(state: &AppState, name: &str, digest: &Digest) -> ApiResult<()> {
    state
        .store
        .change(|repos| {
            repos
                .entry(name.to_owned())
                .or_default()
                .blobs
                .insert(digest.clone());
        })
        .await
        .map_err(ApiError::internal)
}

fn created(name: &str, digest: &Digest) -> Response {
    let map = headers(&[
        ("location", format!("/v2/{name}/blobs/{digest}")),
        ("docker-content-digest", digest.to_string()),
        ("content-length", "0".to_owned()),
    ]);
    (StatusCode::CREATED, map).into_response()
}

/// `POST …/blobs/uploads/`: a mount (when `may_read_source` says the client may pull from the
/// `from` repository), a monolithic upload with `?digest=`, or a new session.
pub async fn start_upload(
    state: &AppState,
    name: &str,
    request: Request,
    may_read_source: impl FnOnce(&str) -> bool,
) -> ApiResult {
    let params = query(&request);
    if let (Some(mount), Some(from)) = (param(&params, "mount"), param(&params, "from")) {
        let digest = parse_digest(mount)?;
        let present = may_read_source(from)
            && state
                .store
                .read(|repos| repos.get(from).is_some_and(|r| r.blobs.contains(&digest)));
        if present {
            link(state, name, &digest).await?;
            return Ok(created(name, &digest));
        }
        // Not mountable (or not readable by this client): a normal upload (202), as the spec says.
    }
    state.uploads.expire_idle();
    let id = new_id();
    let path = state.store.spool_path(&id);
    tokio::fs::File::create(&path)
        .await
        .map_err(ApiError::internal)?;
    if let Err(error) = state.uploads.open(&id, name, path.clone()) {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(upload_error(&error, &id, name));
    }
    if let Some(digest) = param(&params, "digest").map(str::to_owned) {
        // A monolithic upload: the whole blob in the POST.
        let lease = lease(state, name, &id)?;
        return finish(state, name, &id, lease, &digest, request.into_body()).await;
    }
    Ok(upload_response(StatusCode::ACCEPTED, name, &id, 0))
}

fn lease<'a>(state: &'a AppState, name: &str, id: &str) -> ApiResult<Lease<'a>> {
    state
        .uploads
        .lease(id, name)
        .map_err(|e| upload_error(&e, id, name))
}

/// Appends a request body to the leased upload's file; returns the bytes added.
async fn append(lease: &mut Lease<'_>, id: &str, name: &str, body: Body) -> ApiResult<u64> {
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&lease.upload().path)
        .await
        .map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    let mut added = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("reading the request body: {e}"),
            )
        })?;
        lease.grew(&chunk).map_err(|e| upload_error(&e, id, name))?;
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
        added += chunk.len() as u64;
    }
    file.flush().await.map_err(ApiError::internal)?;
    Ok(added)
}

/// A chunk's `Content-Range` (`<start>-<end>`, inclusive), checked against where the upload ends
/// and against `Content-Length` when the request has one.
fn chunk_range(headers: &HeaderMap, size: u64) -> ApiResult<Option<(u64, u64)>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let invalid = |why: String| {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            why,
        )
    };
    let text = value
        .to_str()
        .map_err(|_| invalid("Content-Range is not ASCII".to_owned()))?;
    let parsed = text.trim().split_once('-').and_then(|(start, end)| {
        Some((
            start.trim().parse::<u64>().ok()?,
            end.trim().parse::<u64>().ok()?,
        ))
    });
    let Some((start, end)) = parsed.filter(|(start, end)| start <= end) else {
        return Err(invalid(format!(
            "Content-Range {text:?} is not <start>-<end> with start <= end"
        )));
    };
    if start != size {
        return Err(invalid(format!(
            "chunk {text} does not start where the upload ends ({size} bytes so far)"
        )));
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = length
        && length != end - start + 1
    {
        return Err(invalid(format!(
            "chunk {text} holds {} bytes, Content-Length says {length}",
            end - start + 1
        )));
    }
    Ok(Some((start, end)))
}

pub async fn patch_upload(state: &AppState, name: &str, id: &str, request: Request) -> ApiResult {
    let mut lease = lease(state, name, id)?;
    let range = match chunk_range(request.headers(), lease.upload().size) {
        Ok(range) => range,
        Err(error) => {
            // Nothing was written: the client may ask where the upload stands and go on.
            lease.keep();
            return Err(error);
        }
    };
    if let Some((start, end)) = range {
        lease
            .fits(end - start + 1)
            .map_err(|e| upload_error(&e, id, name))?;
    }
    let added = append(&mut lease, id, name, request.into_body()).await?;
    if let Some((start, end)) = range
        && added != end - start + 1
    {
        // The session is discarded with the lease: its bytes no longer match what was promised.
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!(
                "chunk {start}-{end} promised {} bytes and sent {added}; upload {id} was discarded",
                end - start + 1
            ),
        ));
    }
    let size = lease.upload().size;
    lease.keep();
    Ok(upload_response(StatusCode::ACCEPTED, name, id, size))
}

pub async fn finish_upload(state: &AppState, name: &str, id: &str, request: Request) -> ApiResult {
    let lease = lease(state, name, id)?;
    let Some(digest) = param(&query(&request), "digest").map(str::to_owned) else {
        lease.keep();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the final PUT needs ?digest=",
        ));
    };
    finish(state, name, id, lease, &digest, request.into_body()).await
}

/// Appends the last bytes, checks the digest of the whole upload, and commits it. On any failure
/// the upload is discarded (the lease is dropped).
async fn finish(
    state: &AppState,
    name: &str,
    id: &str,
    mut lease: Lease<'_>,
    digest: &str,
    body: Body,
) -> ApiResult {
    let digest = parse_digest(digest)?;
    append(&mut lease, id, name, body).await?;
    let actual = lease
        .upload()
        .digest_like(&digest)
        .await
        .map_err(ApiError::internal)?;
    if actual != digest {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("expected {digest}, the upload hashes to {actual}"),
        ));
    }
    let upload = lease.finish();
    let committed = state.store.commit(&upload.path, &digest).await;
    if let Err(error) = committed {
        let _ = tokio::fs::remove_file(&upload.path).await;
        return Err(ApiError::internal(error));
    }
    link(state, name, &digest).await?;
    Ok(created(name, &digest))
}

pub fn upload_status(state: &AppState, name: &str, id: &str) -> ApiResult {
    let size = state
        .uploads
        .size(id, name)
        .map_err(|e| upload_error(&e, id, name))?;
    Ok(upload_response(StatusCode::NO_CONTENT, name, id, size))
}

pub fn cancel_upload(state: &AppState, name: &str, id: &str) -> ApiResult {
    state
        .uploads
        .cancel(id, name)
        .map_err(|e| upload_error(&e, id, name))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
