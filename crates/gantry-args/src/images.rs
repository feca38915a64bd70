//! The images a tool works on.

use gantry_oci::Reference;

/// Images by tag or digest, each pinned to its digest before anything is done to it.
#[derive(Debug, Clone, clap::Args)]
pub struct ImagesArgs {
    /// Images, by digest or by tag (a tag is resolved once; its digest is what counts).
    #[arg(long = "image", required = true, value_name = "IMAGE")]
    pub images: Vec<Reference>,

    /// For an image index, each platform's manifest too.
    #[arg(long)]
    pub recursive: bool,
}

impl ImagesArgs {
    /// The images as references.
    pub fn references(&self) -> Vec<&Reference> {
        self.images.iter().collect()
    }
}
