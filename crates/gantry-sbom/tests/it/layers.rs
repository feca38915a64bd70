//! Layers as tar streams: whiteouts and opaque directories in gzip and zstd, decompression bombs
//! and oversized files stopped with a clear error, binaries read through any chunking.

use std::io::{Read, Write as _};

use gantry_sbom::{Filesystem, catalog, read_layer};

/// A tar of `(path, content)` regular files (content `None`: a directory).
fn tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        let (kind, mode, bytes): (_, _, &[u8]) = match content {
            Some(bytes) => (tar::EntryType::Regular, 0o644, bytes),
            None => (tar::EntryType::Directory, 0o755, &[]),
        };
        header.set_entry_type(kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder
            .append_data(&mut header, path, bytes)
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn npm(name: &str, version: &str) -> Vec<u8> {
    format!(r#"{{"name":"{name}","version":"{version}"}}"#).into_bytes()
}

fn purls(fs: &Filesystem) -> Vec<String> {
    catalog(fs)
        .expect("catalog")
        .packages
        .into_iter()
        .map(|p| p.purl)
        .collect()
}

#[test]
fn whiteouts_and_opaque_directories_in_gzip_and_zstd_layers() {
    let (a, b, c, d) = (
        npm("a", "1.0.0"),
        npm("b", "1.0.0"),
        npm("c", "1.0.0"),
        npm("d", "2.0.0"),
    );
    let lower = tar(&[
        ("app/node_modules/a/package.json", Some(&a)),
        ("app/node_modules/b/package.json", Some(&b)),
        ("opaque/node_modules/c/package.json", Some(&c)),
    ]);
    let upper = tar(&[
        ("app/node_modules/.wh.a", Some(b"")),
        ("opaque/", None),
        ("opaque/node_modules/d/package.json", Some(&d)),
        ("opaque/.wh..wh..opq", Some(b"")),
    ]);
    for (name, lower, upper) in [
        ("gzip", gzip(&lower), gzip(&upper)),
        (
            "zstd",
            zstd::encode_all(lower.as_slice(), 3).expect("zstd"),
            zstd::encode_all(upper.as_slice(), 3).expect("zstd"),
        ),
        ("plain", lower.clone(), upper.clone()),
    ] {
        let mut fs = Filesystem::default();
        fs.apply(read_layer("lower", lower.as_slice(), u64::MAX).expect("lower"));
        fs.apply(read_layer("upper", upper.as_slice(), u64::MAX).expect("upper"));
        assert_eq!(purls(&fs), ["pkg:npm/b@1.0.0", "pkg:npm/d@2.0.0"], "{name}");
    }
}

#[test]
fn a_decompression_bomb_stops_at_the_limit_with_a_clear_error() {
    // 64 MiB of zeros in one file gzip to about 64 KiB
    let zeros = vec![0u8; 64 * 1024 * 1024];
    let bomb = gzip(&tar(&[("zeros", Some(&zeros))]));
    assert!(bomb.len() < 1024 * 1024);
    let error = read_layer("sha256:bomb", bomb.as_slice(), 8 * 1024 * 1024).expect_err("stopped");
    let message = error.to_string();
    assert!(
        message.contains("sha256:bomb")
            && message.contains("8388608")
            && message.contains("--max-layer-size"),
        "{message}"
    );
    // the same layer under a limit it fits in reads
    read_layer("sha256:bomb", bomb.as_slice(), 128 * 1024 * 1024).expect("within the limit");
}

#[test]
fn a_package_database_larger_than_gantry_reads_is_an_error_naming_it() {
    let huge = vec![b'x'; 65 * 1024 * 1024];
    let layer = gzip(&tar(&[("var/lib/dpkg/status", Some(&huge))]));
    let error = read_layer("l", layer.as_slice(), u64::MAX).expect_err("too large");
    let message = error.to_string();
    assert!(
        message.contains("/var/lib/dpkg/status") && message.contains("68157440"),
        "{message}"
    );
}

#[test]
fn a_truncated_layer_is_an_error_not_a_short_catalogue() {
    let layer = gzip(&tar(&[(
        "app/node_modules/a/package.json",
        Some(&npm("a", "1.0.0")),
    )]));
    let cut = &layer[..layer.len() / 2];
    assert!(read_layer("sha256:cut", cut, u64::MAX).is_err());
}

/// Hands out at most `step` bytes per read.
struct Trickle<R> {
    inner: R,
    step: usize,
}

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step);
        self.inner.read(&mut buf[..n])
    }
}

#[test]
fn binaries_read_the_same_through_any_chunking() {
    let Some(lang) = gantry_testkit::component::sbom_rootfs("lang") else {
        return;
    };
    for binary in ["usr/local/bin/hello", "usr/local/bin/uv"] {
        let bytes = std::fs::read(lang.join(binary)).expect("binary");
        let whole = tar(&[(binary, Some(&bytes))]);
        let mut reference = None;
        for step in [7, 4096, 1 << 20] {
            let mut fs = Filesystem::default();
            // executables: the mode decides; set it in the header
            let mut archive = tar::Archive::new(whole.as_slice());
            let mut builder = tar::Builder::new(Vec::new());
            for entry in archive.entries().expect("entries") {
                let mut entry = entry.expect("entry");
                let mut header = entry.header().clone();
                header.set_mode(0o755);
                header.set_cksum();
                let path = entry.path().expect("path").into_owned();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("read");
                builder
                    .append_data(&mut header, path, data.as_slice())
                    .expect("append");
            }
            let executable = builder.into_inner().expect("tar");
            fs.apply(
                read_layer(
                    "l",
                    Trickle {
                        inner: executable.as_slice(),
                        step,
                    },
                    u64::MAX,
                )
                .expect("layer"),
            );
            let found = purls(&fs);
            assert!(found.len() > 1, "{binary}: {found:?}");
            match &reference {
                None => reference = Some(found),
                Some(r) => assert_eq!(r, &found, "{binary} read {step} bytes at a time"),
            }
        }
    }
}
