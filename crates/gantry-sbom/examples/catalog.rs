//! Catalogues a root filesystem directory and prints its CycloneDX SBOM (a developer's tool).

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/".into());
    match gantry_sbom::catalog_rootfs(std::path::Path::new(&dir)) {
        Ok(inventory) => {
            let subject = gantry_sbom::Subject {
                kind: "file",
                name: dir,
                version: None,
                purl: None,
                created: None,
            };
            let tool = gantry_sbom::Tool {
                name: "gantry".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            };
            let json = gantry_sbom::write(&inventory, &subject, &tool);
            #[expect(clippy::print_stdout, reason = "the example prints the SBOM")]
            {
                println!("{}", String::from_utf8_lossy(&json));
            }
        }
        Err(e) => {
            #[expect(clippy::print_stderr, reason = "the example reports its error")]
            {
                eprintln!("error: {e}");
            }
            std::process::exit(2);
        }
    }
}
