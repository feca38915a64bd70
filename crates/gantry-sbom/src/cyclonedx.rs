//! CycloneDX 1.6 JSON, written from a small model of our own (the `cyclonedx-bom` crate stops at
//! 1.5), checked against the official schema in the tests.
//!
//! The output is byte-identical for the same inventory: components sorted by purl, properties
//! and dependencies sorted, the serial number a `UUIDv5` of the document's own bytes, the
//! timestamp the image's `created` (or none).

use serde_json::{Value, json};

use crate::catalog::Inventory;
use crate::license;

/// What the SBOM describes (the image, or a directory).
#[derive(Debug, Clone)]
pub struct Subject {
    /// `metadata.component.type`: `container` for an image, `file` for a directory.
    pub kind: &'static str,
    /// Its name (`registry/repository`, or the name given for a directory).
    pub name: String,
    /// Its version (the manifest digest), when it has one.
    pub version: Option<String>,
    /// Its purl (`pkg:oci/…`), when it has one.
    pub purl: Option<String>,
    /// When it was made (RFC 3339, the image config's `created`).
    pub created: Option<String>,
}

/// The tool that wrote the SBOM.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
}

fn properties(pairs: impl IntoIterator<Item = (String, String)>) -> Option<Value> {
    let list: Vec<Value> = pairs
        .into_iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    (!list.is_empty()).then_some(Value::Array(list))
}

/// The SBOM of `inventory`, as compact JSON bytes.
pub fn write(inventory: &Inventory, subject: &Subject, tool: &Tool) -> Vec<u8> {
    let subject_ref = subject
        .purl
        .clone()
        .unwrap_or_else(|| format!("subject:{}", subject.name));
    let mut component = json!({
        "type": subject.kind,
        "bom-ref": subject_ref,
        "name": subject.name,
    });
    if let Some(version) = &subject.version {
        component["version"] = json!(version);
    }
    if let Some(purl) = &subject.purl {
        component["purl"] = json!(purl);
    }
    let mut metadata = json!({
        "tools": { "components": [ { "type": "application", "name": tool.name, "version": tool.version } ] },
        "component": component,
    });
    if let Some(created) = &subject.created {
        metadata["timestamp"] = json!(created);
    }
    let mut components: Vec<Value> = Vec::new();
    let mut top: Vec<String> = Vec::new();
    if let Some(os) = &inventory.os
        && let Some(id) = &os.id
    {
        let os_ref = format!("os:{id}@{}", os.version_id.as_deref().unwrap_or(""));
        let mut entry = json!({ "type": "operating-system", "bom-ref": os_ref, "name": id });
        if let Some(version) = &os.version_id {
            entry["version"] = json!(version);
        }
        if let Some(pretty) = &os.pretty_name {
            entry["description"] = json!(pretty);
        }
        top.push(os_ref);
        components.push(entry);
    }
    for package in &inventory.packages {
        let mut entry = json!({
            "type": if package.application { "application" } else { "library" },
            "bom-ref": package.purl,
            "name": package.name,
            "purl": package.purl,
        });
        if let Some(version) = &package.version {
            entry["version"] = json!(version);
        }
        let licenses = license::licenses(&package.licenses);
        if !licenses.is_empty() {
            entry["licenses"] = Value::Array(licenses);
        }
        let props = package
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(std::iter::once((
                "gantry:ecosystem".to_owned(),
                package.ecosystem.name().to_owned(),
            )))
            .chain(
                package
                    .owns
                    .iter()
                    .map(|purl| ("gantry:owns".to_owned(), purl.clone())),
            );
        let mut props: Vec<(String, String)> = props.collect();
        props.sort();
        if let Some(props) = properties(props) {
            entry["properties"] = props;
        }
        if !package.locations.is_empty() {
            entry["evidence"] = json!({
                "occurrences": package.locations.iter().map(|l| json!({ "location": format!("/{l}") })).collect::<Vec<_>>()
            });
        }
        top.push(package.purl.clone());
        components.push(entry);
    }
    let mut dependencies = vec![json!({ "ref": subject_ref, "dependsOn": top })];
    for package in &inventory.packages {
        dependencies.push(json!({
            "ref": package.purl,
            "dependsOn": package.depends.iter().collect::<Vec<_>>(),
        }));
    }
    let mut document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "",
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
    });
    let unsigned = serde_json::to_vec(&document).unwrap_or_default();
    let serial = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, &unsigned);
    document["serialNumber"] = json!(format!("urn:uuid:{serial}"));
    serde_json::to_vec(&document).unwrap_or_default()
}
