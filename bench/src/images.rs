//! Image sizes: each archive `votectl images build` wrote to target/images/<service>.tar, next to
//! the size of the service's release binary (the floor no image of it can go below).

use std::path::{Path, PathBuf};

/// One image archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub service: String,
    pub archive_bytes: u64,
    /// The stripped release binary, when one was built.
    pub binary: Option<(PathBuf, u64)>,
}

/// The binary an image of `service` carries.
pub fn binary_name(service: &str) -> String {
    match service {
        "votectl" => "votectl".to_owned(),
        other => format!("vote-{other}"),
    }
}

/// The archives in `dir` (empty when none were built), sorted by service.
pub fn scan(dir: &Path, target_dir: &Path) -> Vec<Image> {
    let mut images: Vec<Image> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let service = path.file_name()?.to_str()?.strip_suffix(".tar")?.to_owned();
            let archive_bytes = entry.metadata().ok()?.len();
            let name = binary_name(&service);
            let binary = ["x86_64-unknown-linux-musl/release", "release"]
                .iter()
                .map(|sub| target_dir.join(sub).join(&name))
                .find_map(|p| Some((p.clone(), p.metadata().ok()?.len())));
            Some(Image {
                service,
                archive_bytes,
                binary,
            })
        })
        .collect();
    images.sort_by(|a, b| a.service.cmp(&b.service));
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_found_with_their_binaries() {
        let tmp = tempfile::tempdir().unwrap();
        let images = tmp.path().join("images");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::write(images.join("api.tar"), vec![0u8; 300]).unwrap();
        std::fs::write(images.join("api.cdx.json"), "{}").unwrap();
        let release = tmp.path().join("release");
        std::fs::create_dir_all(&release).unwrap();
        std::fs::write(release.join("vote-api"), vec![0u8; 100]).unwrap();
        let found = scan(&images, tmp.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].service, "api");
        assert_eq!(found[0].archive_bytes, 300);
        assert_eq!(found[0].binary.as_ref().map(|b| b.1), Some(100));
        assert!(scan(&tmp.path().join("none"), tmp.path()).is_empty());
        assert_eq!(binary_name("votectl"), "votectl");
    }
}
