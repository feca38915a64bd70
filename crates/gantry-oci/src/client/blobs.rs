//! Blobs: existence, verified reads, uploads (whole, or streamed from another registry) and
//! cross-repository mounts.

use bytes::Bytes;
use reqwest::{Method, Response, StatusCode, Url, header};

use crate::client::Client;
use crate::digest::Digest;
use crate::engine::{Call, Scope, check_status, content_length, header_str, read_limited};
use crate::error::{OciError, Result};
use crate::reference::Reference;

impl Client {
    /// The size of a blob, or `None` when the repository does not have it.
    pub async fn blob_exists(
        &self,
        reference: &Reference,
        digest: &Digest,
        scopes: &[Scope],
    ) -> Result<Option<u64>> {
        let response = self
            .engine
            .call(Method::HEAD, reference, &format!("blobs/{digest}"))
            .scopes(scopes)
            .what(format!("blob {digest}"))
            .found()
            .await?;
        Ok(response.map(|r| content_length(r.headers()).unwrap_or(0)))
    }

    /// Fetches a whole blob of at most `limit` bytes and checks it against `digest`.
    pub async fn blob(&self, reference: &Reference, digest: &Digest, limit: u64) -> Result<Bytes> {
        let what = format!("blob {digest} in {}", reference.name());
        let response = self.blob_response(reference, digest).await?;
        let bytes = read_limited(&self.engine, response, limit, &what).await?;
        let actual = digest.hash_like(&bytes);
        if actual != *digest {
            return Err(OciError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streams a blob as it arrives, for a reader that never holds it whole (an SBOM of a 2 GiB
    /// layer). The stream ends with an error, after the last chunk, when the content is not
    /// `size` bytes or does not hash to `digest`: a consumer must read it to the end before
    /// trusting anything it read.
    pub async fn blob_stream(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes>> + Send + '_> {
        use futures_util::StreamExt as _;
        let what = format!("blob {digest} in {}", reference.name());
        let response = self.blob_response(reference, digest).await?;
        let url = response.url().to_string();
        let state = (
            response.bytes_stream(),
            Some(digest.hasher()),
            0u64,
            digest.clone(),
        );
        Ok(futures_util::stream::unfold(
            state,
            move |(mut body, hasher, read, digest)| {
                let what = what.clone();
                let url = url.clone();
                async move {
                    let mut hasher = hasher?;
                    match body.next().await {
                        Some(Ok(chunk)) => {
                            let read = read + chunk.len() as u64;
                            self.engine.count_down(chunk.len() as u64);
                            if read > size {
                                return Some((
                                    Err(OciError::TooLarge { what, limit: size }),
                                    (body, None, read, digest),
                                ));
                            }
                            hasher.update(&chunk);
                            Some((Ok(chunk), (body, Some(hasher), read, digest)))
                        }
                        Some(Err(error)) => Some((
                            Err(OciError::Http {
                                method: "GET".to_owned(),
                                url,
                                reason: gantry_http::explain(&error),
                            }),
                            (body, None, read, digest),
                        )),
                        None => {
                            let actual = hasher.finish();
                            if actual != digest {
                                Some((
                                    Err(OciError::DigestMismatch {
                                        what,
                                        expected: digest.clone(),
                                        actual,
                                    }),
                                    (body, None, read, digest),
                                ))
                            } else if read != size {
                                Some((
                                    Err(OciError::Protocol(format!(
                                        "{what}: expected {size} bytes, read {read}"
                                    ))),
                                    (body, None, read, digest),
                                ))
                            } else {
                                None
                            }
                        }
                    }
                }
            },
        ))
    }

    /// Opens a blob download for streaming (the caller checks the digest as it reads).
    pub(crate) async fn blob_response(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Response> {
        self.engine
            .call(Method::GET, reference, &format!("blobs/{digest}"))
            .what(format!("blob {digest} in {}", reference.name()))
            .ok()
            .await
    }

    /// Starts an upload session; returns its location.
    pub(crate) async fn start_upload(
        &self,
        reference: &Reference,
        scopes: &[Scope],
    ) -> Result<Url> {
        let response = self
            .engine
            .call(Method::POST, reference, "blobs/uploads/")
            .scopes(scopes)
            .what(format!("upload to {}", reference.name()))
            .ok()
            .await?;
        self.location(reference, &response)
    }

    /// Proves the credentials may push to `reference`'s repository without changing anything a
    /// reader can see: opens an upload session (which needs push permission) and cancels it. A
    /// registry that does not cancel sessions lets the unused one expire.
    pub async fn check_push(&self, reference: &Reference) -> Result<()> {
        let scopes = [Scope::push(reference.repository())];
        let location = self.start_upload(reference, &scopes).await?;
        // Best effort: the session holds no data, and registries expire idle ones.
        let _ = self
            .engine
            .follow(Method::DELETE, reference, location.as_str())
            .scopes(&scopes)
            .what(format!("cancel of an upload to {}", reference.name()))
            .send()
            .await;
        Ok(())
    }

    /// The `Location` of an upload session, resolved against the registry (and checked as
    /// [`Engine::follow`](crate::engine) checks it when it is used).
    fn location(&self, reference: &Reference, response: &Response) -> Result<Url> {
        let location = header_str(response.headers(), header::LOCATION).ok_or_else(|| {
            OciError::Protocol(format!(
                "{} answered {} without a Location",
                response.url(),
                response.status()
            ))
        })?;
        let base = self.engine.base_url(reference.api_host())?;
        base.join(&location)
            .map_err(|e| OciError::Protocol(format!("bad Location {location:?}: {e}")))
    }

    /// The request that completes the upload at `location` with `digest`.
    pub(crate) fn finish_upload<'a>(
        &'a self,
        reference: &'a Reference,
        location: &Url,
        digest: &Digest,
    ) -> Call<'a> {
        self.engine
            .follow(Method::PUT, reference, location.as_str())
            .query("digest", digest.as_str())
            .what(format!("blob {digest} to {}", reference.name()))
    }

    /// Uploads a blob held in memory (config blobs, small artifacts): POST, then PUT with the digest.
    pub async fn upload_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<()> {
        let scopes = [Scope::push(reference.repository())];
        let location = self.start_upload(reference, &scopes).await?;
        self.finish_upload(reference, &location, digest)
            .bytes(bytes, "application/octet-stream")
            .ok()
            .await?;
        Ok(())
    }

    /// Tries to mount a blob from another repository of the same registry. `Ok(None)` when it was
    /// mounted; `Ok(Some(location))` when the registry opened a normal upload instead (202).
    pub async fn mount_blob(
        &self,
        target: &Reference,
        from: &Reference,
        digest: &Digest,
    ) -> Result<Option<Url>> {
        let scopes = [
            Scope::push(target.repository()),
            Scope::pull(from.repository()),
        ];
        let what = format!("mount of {digest}");
        let response = self
            .engine
            .call(Method::POST, target, "blobs/uploads/")
            .query("mount", digest.as_str())
            .query("from", from.repository())
            .scopes(&scopes)
            .what(&what)
            .send()
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(None),
            StatusCode::ACCEPTED => Ok(Some(self.location(target, &response)?)),
            other => {
                let url = response.url().to_string();
                check_status(response, &Method::POST, &url, &what).await?;
                Err(OciError::Protocol(format!(
                    "POST {url} answered {other}, expected 201 (mounted) or 202 (upload instead)"
                )))
            }
        }
    }
}
