//! What can go wrong reading an image's contents.

/// An error cataloguing a filesystem or writing its SBOM.
#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum SbomError {
    #[error("reading {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A file the catalogue reads whole is larger than gantry reads.
    #[error(
        "{path} is {size} bytes, more than the {limit} bytes gantry reads of such a file\nhint: an image with a file this large is unusual; check that {path} is what it claims to be"
    )]
    FileTooLarge { path: String, size: u64, limit: u64 },
    /// A layer decompresses to more than the limit (a decompression bomb, or a limit set too low).
    #[error(
        "layer {layer} decompresses to more than {limit} bytes\nhint: raise --max-layer-size if the layer really is that large"
    )]
    LayerTooLarge { layer: String, limit: u64 },
    #[error("layer {layer} is not a tar archive gantry can read: {reason}")]
    BadLayer { layer: String, reason: String },
    /// A package database that exists but cannot be read: an SBOM without it would be wrong.
    #[error("{path}: {reason}")]
    Database { path: String, reason: String },
}

impl SbomError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// A result with [`SbomError`].
pub type Result<T, E = SbomError> = std::result::Result<T, E>;
