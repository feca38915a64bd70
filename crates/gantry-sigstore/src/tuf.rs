//! The trusted root from a TUF repository, when asked: Sigstore's public-good CDN, GitHub's, or a
//! private mirror, fetched with gantry's HTTP client and verified from a root of trust the caller
//! names (a `root.json` file, or the one embedded for a well-known instance).
//!
//! The one decision: nothing is trusted on first use. A repository gantry does not know needs its
//! `root.json`; the cache is re-verified from that root on every run, and offline means the
//! verified cache and no request at all.

use std::path::PathBuf;

use sigstore_trust_root::{SigstoreInstance, TrustedRoot, TufBootstrap, TufConfig};

use crate::SigstoreError;

/// Where to fetch the trusted root by TUF, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuf {
    /// The repository's base URL (metadata at the top, targets under `targets/`).
    pub url: String,
    /// The `root.json` to start from; required unless `url` is a well-known instance's.
    pub root: Option<PathBuf>,
    /// Where verified metadata and targets are kept between runs; default the user's cache.
    pub cache: Option<PathBuf>,
    /// Serve the verified cache only, with no request.
    pub offline: bool,
}

/// The well-known instances whose TUF roots are embedded.
const KNOWN: [SigstoreInstance; 3] = [
    SigstoreInstance::PublicGood,
    SigstoreInstance::Staging,
    SigstoreInstance::GitHub,
];

impl Tuf {
    /// The configuration for sigstore-trust-root, with every file read and checked; no request.
    fn config(&self) -> Result<TufConfig, SigstoreError> {
        let invalid = |reason: String| SigstoreError::Tuf {
            url: self.url.clone(),
            reason,
        };
        let url = reqwest::Url::parse(&self.url).map_err(|e| invalid(format!("its URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(invalid(format!(
                "expected an http(s) URL, found scheme {:?}",
                url.scheme()
            )));
        }
        let bootstrap = self.bootstrap().map_err(invalid)?;
        let mut config = TufConfig::custom(self.url.clone(), bootstrap);
        if let Some(cache) = &self.cache {
            config = config.with_cache_dir(cache.clone());
        }
        if self.offline {
            config = config.offline();
        }
        Ok(config)
    }

    /// The root of trust: the file given, else the embedded root of a well-known instance.
    fn bootstrap(&self) -> Result<TufBootstrap, String> {
        if let Some(path) = &self.root {
            let json = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            return serde_json::from_str::<serde_json::Value>(&json)
                .map(|_| TufBootstrap::trusted(json))
                .map_err(|e| format!("{} is not a valid TUF root.json: {e}", path.display()));
        }
        let wanted = self.url.trim_end_matches('/');
        KNOWN
            .into_iter()
            .find(|instance| instance.tuf_url().trim_end_matches('/') == wanted)
            .map(|known| TufBootstrap::trusted(known.tuf_root()))
            .ok_or_else(|| {
                format!(
                    "gantry has the TUF roots of {} only; give the root.json to trust for this one (tuf-root)",
                    KNOWN.map(SigstoreInstance::tuf_url).join(", ")
                )
            })
    }

    /// Checks what can be checked without a request: the URL, and the root file.
    pub fn check(&self) -> Result<(), SigstoreError> {
        self.config().map(drop)
    }

    /// Runs the TUF update (root → timestamp → snapshot → targets) and returns the verified
    /// `trusted_root.json` target. `http` carries gantry's CA roots and timeouts.
    pub async fn trusted_root(&self, http: &reqwest::Client) -> Result<TrustedRoot, SigstoreError> {
        let config = self.config()?.with_http_client(http.clone());
        TrustedRoot::from_tuf(config)
            .await
            .map_err(|e| SigstoreError::Tuf {
                url: self.url.clone(),
                reason: format!(
                    "could not prove trusted_root.json{}: {e}",
                    if self.offline {
                        " from the cache (offline)"
                    } else {
                        ""
                    }
                ),
            })
    }
}
