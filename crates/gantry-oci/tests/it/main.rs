//! gantry-oci against real registries: every test marked `on_both_backends!` runs against CNCF
//! distribution (no referrers API: the fallback paths) and gantry-registry (the API paths).

/// Runs an async test body once per backend, as `<name>::distribution` and `<name>::gantry_registry`.
macro_rules! on_both_backends {
    (async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($backend: gantry_testkit::Backend) $body
            #[tokio::test]
            async fn distribution() {
                run(gantry_testkit::Backend::Distribution).await;
            }
            #[tokio::test]
            async fn gantry_registry() {
                run(gantry_testkit::Backend::Gantry).await;
            }
        }
    };
}

mod basics;
mod copy;
mod failures;
mod referrers;
mod skopeo;
mod support;
mod trust;
