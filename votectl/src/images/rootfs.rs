//! The files of one image, in two layers: `base` (users, CA certificates, `/tmp`, the nonroot home and,
//! for a dynamic binary, its loader and libraries) and `app` (the binary).
//!
//! Two layers because the base is identical for every static image: a cluster stores it once. The user
//! database holds exactly `root` and `nonroot` with the contract's UID/GID; the home is the only entry not
//! owned by root. Every copied host file is recorded with its sha256 and, where `dpkg` knows it, the
//! Debian package it came from, for the SBOM.

use std::path::{Path, PathBuf};
use std::process::Command;

use vote_contract::deploy::{NONROOT_GID, NONROOT_UID};

use super::elf::{self, Linkage};
use super::layer::Layer;
use super::{BIN_DIR, Error, ImageSpec, Result, sha256_hex};

/// Where the CA bundle goes (the path Debian, distroless, Go, OpenSSL and rustls-native-certs look at).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Home of the nonroot user.
pub const NONROOT_HOME: &str = "/home/nonroot";

/// A file in the image that is not the binary: generated here or copied from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemFile {
    pub image_path: String,
    pub sha256: String,
    /// The host file it was copied from; `None` when generated (`/etc/passwd`).
    pub host_path: Option<PathBuf>,
    pub debian: Option<DebPackage>,
}

/// The Debian package a host file belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// Both layers of an image and what went into them.
#[derive(Debug, Clone)]
pub struct RootFs {
    pub base: Layer,
    pub app: Layer,
    pub linkage: Linkage,
    /// Absolute path of the binary in the image (the entrypoint).
    pub binary_path: String,
    pub binary_sha256: String,
    /// Every file of the base layer, sorted by image path.
    pub files: Vec<SystemFile>,
}

impl RootFs {
    /// Lays out the image for `spec.binary`.
    pub fn for_binary(spec: &ImageSpec) -> Result<Self> {
        let binary = read(&spec.binary)?;
        let linkage = elf::inspect(&spec.binary, &binary)?;
        let mut base = Layer::new();
        let mut files = Vec::new();

        for (path, content) in [("/etc/passwd", passwd()), ("/etc/group", group())] {
            files.push(SystemFile {
                image_path: path.to_owned(),
                sha256: sha256_hex(content.as_bytes()),
                host_path: None,
                debian: None,
            });
            base.file(path, 0o644, content.into_bytes())?;
        }
        copy_host_file(
            &mut base,
            &mut files,
            CA_BUNDLE,
            &spec.ca_certificates,
            0o644,
        )?;
        base.dir("/tmp", 0o1777)?;
        base.dir_owned(NONROOT_HOME, 0o700, NONROOT_UID, NONROOT_GID)?;

        if let Linkage::Dynamic { .. } = linkage {
            // glibc's resolver reads this; without it, name lookups skip /etc/hosts.
            let nsswitch = "hosts: files dns\n".to_owned();
            files.push(SystemFile {
                image_path: "/etc/nsswitch.conf".to_owned(),
                sha256: sha256_hex(nsswitch.as_bytes()),
                host_path: None,
                debian: None,
            });
            base.file("/etc/nsswitch.conf", 0o644, nsswitch.into_bytes())?;
            for object in elf::shared_objects(&spec.binary)? {
                copy_host_file(
                    &mut base,
                    &mut files,
                    &object.image_path,
                    &object.host_path,
                    0o755,
                )?;
            }
        }
        files.sort_by(|a, b| a.image_path.cmp(&b.image_path));

        let binary_path = format!("{BIN_DIR}/{}", spec.service.bin);
        let binary_sha256 = sha256_hex(&binary);
        let mut app = Layer::new();
        app.file(&binary_path, 0o755, binary)?;
        Ok(Self {
            base,
            app,
            linkage,
            binary_path,
            binary_sha256,
            files,
        })
    }
}

/// `/etc/passwd` with root and nonroot, no login shells (the image has no shell).
pub fn passwd() -> String {
    format!(
        "root:x:0:0:root:/root:/sbin/nologin\n\
         nonroot:x:{NONROOT_UID}:{NONROOT_GID}:nonroot:{NONROOT_HOME}:/sbin/nologin\n"
    )
}

/// `/etc/group` with root and nonroot.
pub fn group() -> String {
    format!("root:x:0:\nnonroot:x:{NONROOT_GID}:\n")
}

fn copy_host_file(
    layer: &mut Layer,
    files: &mut Vec<SystemFile>,
    image_path: &str,
    host_path: &Path,
    mode: u32,
) -> Result<()> {
    let content = read(host_path)?;
    files.push(SystemFile {
        image_path: image_path.to_owned(),
        sha256: sha256_hex(&content),
        host_path: Some(host_path.to_owned()),
        debian: debian_package(&[Path::new(image_path), host_path]),
    });
    layer.file(image_path, mode, content)?;
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// The package `dpkg -S` names for the first of `paths` it knows (with merged /usr, dpkg may know a
/// library under `/lib` or under `/usr/lib`). `None` without dpkg or for generated files.
pub fn debian_package(paths: &[&Path]) -> Option<DebPackage> {
    for path in paths {
        let Ok(output) = Command::new("dpkg").arg("-S").arg(path).output() else {
            return None;
        };
        if !output.status.success() {
            continue;
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        // "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6"; diversions print extra lines first.
        let Some(package) = stdout
            .lines()
            .filter(|l| !l.starts_with("diversion"))
            .find_map(|l| l.split_once(": ").map(|(pkg, _)| pkg.to_owned()))
        else {
            continue;
        };
        let package = package.split(", ").next().unwrap_or(&package).to_owned();
        let query = Command::new("dpkg-query")
            .args(["-W", "-f", "${Package} ${Version} ${Architecture}"])
            .arg(&package)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&query.stdout);
        let mut fields = text.split_whitespace();
        let (Some(name), Some(version), Some(arch)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        return Some(DebPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_match_the_contract() {
        let passwd = passwd();
        let nonroot = passwd.lines().find(|l| l.starts_with("nonroot:")).unwrap();
        let fields: Vec<_> = nonroot.split(':').collect();
        assert_eq!(fields[2], NONROOT_UID.to_string());
        assert_eq!(fields[3], NONROOT_GID.to_string());
        assert_eq!(fields[5], NONROOT_HOME);
        assert!(group().contains(&format!("nonroot:x:{NONROOT_GID}:")));
    }

    #[test]
    fn dpkg_names_the_package_of_libc() {
        if !Path::new("/var/lib/dpkg/status").exists() {
            return;
        }
        let libc = std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let pkg = debian_package(&[Path::new("/lib/x86_64-linux-gnu/libc.so.6"), &libc]).unwrap();
        assert_eq!(pkg.name, "libc6");
        assert!(!pkg.version.is_empty());
        assert!(debian_package(&[Path::new("/nonexistent/file")]).is_none());
    }
}
