//! A filesystem layer as a deterministic, uncompressed tar.
//!
//! Invariants: entries are written in path order (component-wise, so a directory always precedes its
//! contents), every missing parent directory is added as `0755 root:root`, every entry carries the same
//! mtime, numeric owner only (no user or group names), and no host metadata leaks in. The same entries
//! therefore always give the same bytes, and the same digest.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{Error, Result};

/// What one path in the layer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
}

/// One path in the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits, including sticky/setgid (e.g. `0o1777` for `/tmp`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A set of paths (relative to `/`) and what each is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    entries: BTreeMap<PathBuf, Entry>,
}

impl Layer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory owned by root.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Self> {
        self.insert(
            path,
            Entry {
                kind: Kind::Dir,
                mode,
                uid: 0,
                gid: 0,
            },
        )
    }

    /// A directory with the given owner (the nonroot home).
    pub fn dir_owned(&mut self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<&mut Self> {
        self.insert(
            path,
            Entry {
                kind: Kind::Dir,
                mode,
                uid,
                gid,
            },
        )
    }

    /// A regular file owned by root.
    pub fn file(&mut self, path: &str, mode: u32, content: Vec<u8>) -> Result<&mut Self> {
        self.insert(
            path,
            Entry {
                kind: Kind::File(content),
                mode,
                uid: 0,
                gid: 0,
            },
        )
    }

    /// Adds `path` and any parent directory not yet present. Paths must be absolute and normal (no `..`),
    /// and a path cannot be both a file and a directory.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<&mut Self> {
        let rel = relative(path)?;
        let mut parent = PathBuf::new();
        let components: Vec<_> = rel.components().collect();
        for component in &components[..components.len().saturating_sub(1)] {
            parent.push(component);
            match self.entries.get(&parent) {
                Some(Entry {
                    kind: Kind::File(_),
                    ..
                }) => {
                    return Err(Error::Usage(format!(
                        "layer path {path}: /{} is a file",
                        parent.display()
                    )));
                }
                Some(_) => {}
                None => {
                    self.entries.insert(
                        parent.clone(),
                        Entry {
                            kind: Kind::Dir,
                            mode: 0o755,
                            uid: 0,
                            gid: 0,
                        },
                    );
                }
            }
        }
        if let Some(existing) = self.entries.get(&rel)
            && matches!(existing.kind, Kind::Dir) != matches!(entry.kind, Kind::Dir)
        {
            return Err(Error::Usage(format!(
                "layer path {path} added both as a file and a directory"
            )));
        }
        self.entries.insert(rel, entry);
        Ok(self)
    }

    /// Paths and entries in tar order.
    pub fn entries(&self) -> impl Iterator<Item = (&Path, &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_path(), e))
    }

    /// Does the layer hold `path` (absolute)?
    pub fn contains(&self, path: &str) -> bool {
        relative(path).is_ok_and(|rel| self.entries.contains_key(&rel))
    }

    /// The layer as an uncompressed tar with every mtime set to `mtime`.
    pub fn to_tar(&self, mtime: i64) -> Result<Vec<u8>> {
        let mtime = u64::try_from(mtime).map_err(|_| {
            Error::Usage(format!("image time {mtime} is before 1970-01-01T00:00:00Z"))
        })?;
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(mtime);
            header.set_uid(u64::from(entry.uid));
            header.set_gid(u64::from(entry.gid));
            header.set_mode(entry.mode);
            let encode = |e: std::io::Error| Error::Encode {
                what: "layer",
                reason: format!("/{}: {e}", path.display()),
            };
            match &entry.kind {
                Kind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    let name = format!("{}/", path.display());
                    builder
                        .append_data(&mut header, name, std::io::empty())
                        .map_err(encode)?;
                }
                Kind::File(content) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(content.len() as u64);
                    builder
                        .append_data(&mut header, path, content.as_slice())
                        .map_err(encode)?;
                }
            }
        }
        builder.into_inner().map_err(|e| Error::Encode {
            what: "layer",
            reason: e.to_string(),
        })
    }
}

/// `/etc/passwd` -> `etc/passwd`, refusing `..`, relative and empty paths.
fn relative(path: &str) -> Result<PathBuf> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(Error::Usage(format!(
            "layer path {path:?} must be absolute"
        )));
    }
    let mut rel = PathBuf::new();
    for component in p.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(c) => rel.push(c),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Usage(format!(
                    "layer path {path:?} must not use `..`"
                )));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(Error::Usage(format!("layer path {path:?} names the root")));
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar_bytes: &[u8]) -> Vec<(String, u32, u64, u64, u64)> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn parents_come_first_sorted_with_fixed_metadata() {
        let mut layer = Layer::new();
        layer
            .file("/usr/local/bin/x", 0o755, b"x".to_vec())
            .unwrap();
        layer.dir("/tmp", 0o1777).unwrap();
        layer.file("/etc/passwd", 0o644, b"p".to_vec()).unwrap();
        layer
            .dir_owned("/home/nonroot", 0o700, 65532, 65532)
            .unwrap();
        let tar = layer.to_tar(1_700_000_000).unwrap();
        let entries = names(&tar);
        let paths: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/",
                "etc/passwd",
                "home/",
                "home/nonroot/",
                "tmp/",
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/x"
            ]
        );
        assert!(entries.iter().all(|e| e.4 == 1_700_000_000));
        let tmp = entries.iter().find(|e| e.0 == "tmp/").unwrap();
        assert_eq!(tmp.1, 0o1777);
        let home = entries.iter().find(|e| e.0 == "home/nonroot/").unwrap();
        assert_eq!((home.2, home.3), (65532, 65532));
        assert!(
            entries
                .iter()
                .filter(|e| e.0 != "home/nonroot/")
                .all(|e| e.2 == 0 && e.3 == 0)
        );
        // Same entries inserted in another order: same bytes.
        let mut again = Layer::new();
        again
            .dir_owned("/home/nonroot", 0o700, 65532, 65532)
            .unwrap();
        again.file("/etc/passwd", 0o644, b"p".to_vec()).unwrap();
        again.dir("/tmp", 0o1777).unwrap();
        again
            .file("/usr/local/bin/x", 0o755, b"x".to_vec())
            .unwrap();
        assert_eq!(again.to_tar(1_700_000_000).unwrap(), tar);
    }

    #[test]
    fn bad_paths_are_refused() {
        let mut layer = Layer::new();
        assert!(layer.file("etc/passwd", 0o644, vec![]).is_err());
        assert!(layer.file("/etc/../x", 0o644, vec![]).is_err());
        assert!(layer.file("/", 0o644, vec![]).is_err());
        layer.file("/etc/passwd", 0o644, vec![]).unwrap();
        assert!(layer.file("/etc/passwd/x", 0o644, vec![]).is_err());
        assert!(layer.dir("/etc/passwd", 0o755).is_err());
        assert!(layer.to_tar(-1).is_err());
    }
}
