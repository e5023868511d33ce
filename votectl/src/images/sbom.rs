//! A CycloneDX 1.5 JSON SBOM for each image: the crates compiled into its binary (from Cargo.lock via
//! `cargo metadata`, normal dependencies reachable from the binary's package) and every other file in
//! the image with its sha256 and, where `dpkg` knows it, its Debian package.
//!
//! Invariant: deterministic like the image: no wall-clock time (the image's `created`), the serial number
//! is derived from the image digest, components are sorted.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::archive::rfc3339;
use super::rootfs::RootFs;
use super::{BuiltImage, ImageSpec};

/// A crate compiled into a binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// `registry+https://…` or `git+…`; `None` for a crate of this workspace.
    pub source: Option<String>,
    /// sha256 of the `.crate` file, from Cargo.lock (registry crates only).
    pub checksum: Option<String>,
    /// SPDX license expression from the crate's manifest.
    pub license: Option<String>,
    /// Package URLs of its direct normal dependencies.
    pub depends_on: Vec<String>,
}

impl Crate {
    /// Package URL: `pkg:cargo/<name>@<version>`.
    pub fn purl(&self) -> String {
        purl(&self.name, &self.version)
    }
}

pub fn purl(name: &str, version: &str) -> String {
    format!("pkg:cargo/{name}@{version}")
}

/// The SBOM of one image. `spec.crates` holds the binary's package first.
pub fn cyclonedx(spec: &ImageSpec, fs: &RootFs, image: &BuiltImage) -> Value {
    let created = rfc3339(spec.created).unwrap_or_default();
    let image_ref = format!("image:{}", image.reference());
    let hex = image.config_digest.trim_start_matches("sha256:");
    let serial = serial_number(hex);

    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let mut image_depends = Vec::new();
    let root_purl = spec.crates.first().map(Crate::purl);

    let mut crates = spec.crates.clone();
    crates.sort();
    for krate in &crates {
        let purl = krate.purl();
        let mut component = json!({
            "type": if Some(&purl) == root_purl.as_ref() { "application" } else { "library" },
            "bom-ref": purl,
            "name": krate.name,
            "version": krate.version,
            "purl": purl,
        });
        if let Some(sum) = &krate.checksum {
            component["hashes"] = json!([{ "alg": "SHA-256", "content": sum }]);
        }
        if let Some(license) = &krate.license {
            component["licenses"] = json!([{ "expression": license }]);
        }
        let source = krate.source.as_deref().unwrap_or("workspace");
        component["properties"] = json!([{ "name": "cargo:source", "value": source }]);
        components.push(component);
        let mut depends_on = krate.depends_on.clone();
        depends_on.sort();
        depends_on.dedup();
        dependencies.push(json!({ "ref": purl, "dependsOn": depends_on }));
    }

    let binary_ref = format!("file:{}", fs.binary_path);
    components.push(json!({
        "type": "file",
        "bom-ref": binary_ref,
        "name": fs.binary_path,
        "hashes": [{ "alg": "SHA-256", "content": fs.binary_sha256 }],
        "properties": [{ "name": "linkage", "value": fs.linkage.label() }],
    }));
    if let Some(root) = &root_purl {
        dependencies.push(json!({ "ref": binary_ref, "dependsOn": [root] }));
    }
    image_depends.push(binary_ref);

    for file in &fs.files {
        let bom_ref = format!("file:{}", file.image_path);
        let mut properties = Vec::new();
        match &file.host_path {
            Some(host) => properties.push(json!({
                "name": "copied-from", "value": host.display().to_string()
            })),
            None => properties.push(json!({ "name": "generated-by", "value": "votectl" })),
        }
        if let Some(deb) = &file.debian {
            properties.push(json!({ "name": "debian:package", "value": deb.name }));
            properties.push(json!({ "name": "debian:version", "value": deb.version }));
            properties.push(json!({
                "name": "purl",
                "value": format!("pkg:deb/debian/{}@{}?arch={}", deb.name, deb.version, deb.arch),
            }));
        }
        components.push(json!({
            "type": "file",
            "bom-ref": bom_ref,
            "name": file.image_path,
            "hashes": [{ "alg": "SHA-256", "content": file.sha256 }],
            "properties": properties,
        }));
        image_depends.push(bom_ref);
    }
    image_depends.sort();
    dependencies.push(json!({ "ref": image_ref, "dependsOn": image_depends }));

    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": { "components": [{
                "type": "application",
                "name": "votectl",
                "version": spec.tool_version,
            }]},
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": image.repository,
                "version": image.tag,
                "hashes": [{ "alg": "SHA-256", "content": hex }],
                "properties": [
                    { "name": "oci:manifest-digest", "value": image.manifest_digest },
                    { "name": "oci:config-digest", "value": image.config_digest },
                    { "name": "oci:user", "value": image.user },
                ],
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}

/// `urn:uuid:` built from the first 16 bytes of the image's config digest (a version-4-shaped UUID:
/// unique per image, yet the same for the same image).
fn serial_number(hex: &str) -> String {
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_a_uuid_derived_from_the_digest() {
        let a = serial_number(&"ab".repeat(32));
        assert_eq!(a, serial_number(&"ab".repeat(32)));
        assert_ne!(a, serial_number(&"cd".repeat(32)));
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        let groups: Vec<_> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&uuid[14..15], "4");
    }
}
