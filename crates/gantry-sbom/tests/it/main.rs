//! gantry-sbom against real root filesystems and images: the package managers' own view is the
//! ground truth, the CycloneDX schema the judge of the format, syft and trivy the peers.

mod common;
mod image;
mod layers;
mod os;
mod peers;
mod rootfs;
