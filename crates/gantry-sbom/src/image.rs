//! An image in a registry, catalogued as its layers stream in: each layer is fetched, checked
//! against its digest to the last byte, decompressed and read by a blocking worker fed through a
//! small channel, so at most a few chunks per layer are in memory. Up to `jobs` layers stream at
//! once; their changes are applied in layer order, so the result does not depend on `jobs`.

use bytes::Bytes;
use futures_util::StreamExt as _;
use gantry_oci::{Client, Digest, Manifest, Reference};

use crate::catalog::{self, Inventory};
use crate::error::{Result, SbomError};
use crate::fs::{Filesystem, LayerChanges};

/// How an image is read.
#[derive(Debug, Clone, Copy)]
pub struct ImageOptions {
    /// Layers fetched at once.
    pub jobs: usize,
    /// The most a layer may decompress to.
    pub max_layer_size: u64,
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self {
            jobs: 3,
            max_layer_size: 64 * 1024 * 1024 * 1024,
        }
    }
}

/// What an image holds, and when it was made.
#[derive(Debug, Clone)]
pub struct ImageInventory {
    /// The packages.
    pub inventory: Inventory,
    /// The config's `created`, when it has one.
    pub created: Option<String>,
}

/// Errors reading from the registry.
#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum ImageError {
    #[error(transparent)]
    Registry(#[from] gantry_oci::OciError),
    #[error(transparent)]
    Sbom(#[from] SbomError),
    #[error("{0} is an index: catalogue one of its platform manifests")]
    Index(Digest),
}

const CONFIG_LIMIT: u64 = 4 * 1024 * 1024;

/// Catalogues the image manifest `manifest` of `image`.
pub async fn catalog_image(
    client: &Client,
    image: &Reference,
    manifest: &Manifest,
    options: ImageOptions,
) -> Result<ImageInventory, ImageError> {
    if manifest.is_index() {
        return Err(ImageError::Index(manifest.digest.clone()));
    }
    let fields = manifest.fields()?;
    let created = match &fields.config {
        Some(config) => {
            let bytes = client.blob(image, &config.digest, CONFIG_LIMIT).await?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|c| c.get("created")?.as_str().map(str::to_owned))
        }
        None => None,
    };
    let max = options.max_layer_size;
    let layers: Vec<Result<LayerChanges, ImageError>> = futures_util::stream::iter(fields.layers)
        .map(|layer| async move {
            read_remote_layer(client, image, &layer.digest, layer.size, max).await
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    let mut filesystem = Filesystem::default();
    for layer in layers {
        filesystem.apply(layer?);
    }
    let inventory = tokio::task::spawn_blocking(move || catalog::catalog(&filesystem))
        .await
        .map_err(|e| SbomError::io("cataloguing", std::io::Error::other(e)))??;
    Ok(ImageInventory { inventory, created })
}

async fn read_remote_layer(
    client: &Client,
    image: &Reference,
    digest: &Digest,
    size: u64,
    limit: u64,
) -> Result<LayerChanges, ImageError> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    let name = digest.to_string();
    let worker = tokio::task::spawn_blocking(move || {
        crate::layer::read_layer(
            &name,
            ChannelReader {
                receiver,
                chunk: Bytes::new(),
            },
            limit,
        )
    });
    let mut stream = std::pin::pin!(client.blob_stream(image, digest, size).await?);
    let mut sender = Some(sender);
    // Read to the very end even when the worker is done (a tar ends before its padding): the
    // digest is checked on the last chunk, and nothing read counts until it is.
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if let Some(s) = &sender
            && s.send(chunk).await.is_err()
        {
            sender = None;
        }
    }
    drop(sender);
    let changes = worker
        .await
        .map_err(|e| SbomError::io(format!("layer {digest}"), std::io::Error::other(e)))??;
    Ok(changes)
}

/// A blocking reader over chunks arriving on a channel.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
