//! The registry client: one [`Engine`](crate::engine) shared by every operation of a run, and
//! the distribution-spec operations on top of it (manifests and tags in `client/manifests.rs`,
//! blobs and uploads in `client/blobs.rs`, copies in `copy.rs`, referrers in `referrers.rs`).
//! Every body read is checked against its digest.

mod blobs;
mod manifests;

use crate::auth::Credentials;
use crate::engine::{ClientOptions, Counts, Engine, RequestRecord};
use crate::error::Result;

/// A registry client shared by every operation of a run.
pub struct Client {
    pub(crate) engine: Engine,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.engine.options)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// An anonymous client speaking plain HTTP to `host`: a loopback registry (the demo's
    /// embedded one, test and benchmark registries).
    pub fn plain_http(host: &str) -> Result<Self> {
        Self::new(
            ClientOptions {
                plain_http: vec![host.to_owned()],
                ..ClientOptions::default()
            },
            Credentials::anonymous(),
        )
    }

    /// A client with `options`, authenticating with `credentials`.
    pub fn new(options: ClientOptions, credentials: Credentials) -> Result<Self> {
        Ok(Self {
            engine: Engine::new(options, credentials)?,
        })
    }

    /// How the client reaches registries.
    pub fn options(&self) -> &ClientOptions {
        &self.engine.options
    }

    /// Requests and bytes so far.
    pub fn counts(&self) -> Counts {
        self.engine.counts()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.engine.requests()
    }
}
