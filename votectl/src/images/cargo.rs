//! The workspace side of an image: release builds, the crates behind a binary, and the commit it was
//! built from.
//!
//! Invariant: builds run with `--locked`, so the SBOM (read from the same Cargo.lock) lists exactly the
//! crate versions compiled in. A static musl build is preferred (nothing but the binary in the image);
//! crates with C code (ring) need Debian's `musl-gcc`, passed as `CC_x86_64_unknown_linux_musl`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, PackageId};
use serde::Deserialize;

use super::sbom::{Crate, purl};
use super::{Error, Result, Service};

/// The Rust target a release build is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Static binary (`x86_64-unknown-linux-musl`): the image holds the binary alone.
    Musl,
    /// glibc (`x86_64-unknown-linux-gnu`): the image also holds the loader and the libraries it links.
    Gnu,
}

impl Target {
    pub fn triple(self) -> &'static str {
        match self {
            Target::Musl => "x86_64-unknown-linux-musl",
            Target::Gnu => "x86_64-unknown-linux-gnu",
        }
    }
}

/// Is a static musl build possible here: the Rust target installed and `musl-gcc` present?
pub fn musl_available(cargo: &Path) -> bool {
    let rustc = cargo.with_file_name("rustc");
    let rustc = if rustc.is_file() {
        rustc
    } else {
        PathBuf::from("rustc")
    };
    let libdir = Command::new(rustc)
        .args([
            "--print",
            "target-libdir",
            "--target",
            Target::Musl.triple(),
        ])
        .stderr(Stdio::null())
        .output();
    let has_target = libdir.is_ok_and(|out| {
        out.status.success()
            && std::fs::read_dir(String::from_utf8_lossy(&out.stdout).trim()).is_ok_and(|dir| {
                dir.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
            })
    });
    let has_cc = Command::new("musl-gcc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    has_target && has_cc
}

/// `cargo metadata` for one target platform, plus Cargo.lock's checksums.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub metadata: Metadata,
    checksums: BTreeMap<(String, String), String>,
    /// `[workspace.package] repository`, for members that do not inherit it.
    repository: Option<String>,
}

impl Workspace {
    /// Reads the workspace that contains `dir`, resolved for `target`.
    pub fn load(cargo: &Path, dir: &Path, target: Target) -> Result<Self> {
        let metadata = MetadataCommand::new()
            .cargo_path(cargo)
            .current_dir(dir)
            .other_options(vec![
                "--locked".to_owned(),
                "--filter-platform".to_owned(),
                target.triple().to_owned(),
            ])
            .exec()
            .map_err(|e| Error::Metadata(format!("{e}")))?;
        let lock_path = metadata.workspace_root.join("Cargo.lock");
        let text = std::fs::read_to_string(&lock_path).map_err(|source| Error::Read {
            path: lock_path.clone().into(),
            source,
        })?;
        #[derive(Deserialize)]
        struct Lock {
            #[serde(default)]
            package: Vec<Locked>,
        }
        #[derive(Deserialize)]
        struct Locked {
            name: String,
            version: String,
            checksum: Option<String>,
        }
        let lock: Lock = toml::from_str(&text).map_err(|e| Error::Invalid {
            path: lock_path.into(),
            reason: e.to_string(),
        })?;
        let checksums = lock
            .package
            .into_iter()
            .filter_map(|p| Some(((p.name, p.version), p.checksum?)))
            .collect();
        let repository = workspace_repository(metadata.workspace_root.as_std_path())?;
        Ok(Self {
            metadata,
            checksums,
            repository,
        })
    }

    pub fn root(&self) -> &Path {
        self.metadata.workspace_root.as_std_path()
    }

    pub fn target_dir(&self) -> &Path {
        self.metadata.target_directory.as_std_path()
    }

    /// Where `cargo build --release --target T` puts binaries.
    pub fn release_dir(&self, target: Target) -> PathBuf {
        self.target_dir().join(target.triple()).join("release")
    }

    fn member(&self, name: &str) -> Result<&cargo_metadata::Package> {
        self.metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| Error::Metadata(format!("no workspace package named `{name}`")))
    }

    /// Version, repository and license of a workspace package.
    pub fn package_info(&self, name: &str) -> Result<(String, Option<String>, Option<String>)> {
        let package = self.member(name)?;
        Ok((
            package.version.to_string(),
            package
                .repository
                .clone()
                .or_else(|| self.repository.clone()),
            package.license.clone(),
        ))
    }

    /// The package itself (first) and every crate reachable from it through normal dependencies:
    /// what its binary is compiled from. Build and dev dependencies are left out.
    pub fn crates(&self, package: &str) -> Result<Vec<Crate>> {
        let root = self.member(package)?.id.clone();
        let resolve = self
            .metadata
            .resolve
            .as_ref()
            .ok_or_else(|| Error::Metadata("no dependency graph in the output".to_owned()))?;
        let nodes: BTreeMap<&PackageId, &cargo_metadata::Node> =
            resolve.nodes.iter().map(|n| (&n.id, n)).collect();
        let packages: BTreeMap<&PackageId, &cargo_metadata::Package> =
            self.metadata.packages.iter().map(|p| (&p.id, p)).collect();

        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([&root]);
        let mut edges: BTreeMap<&PackageId, Vec<&PackageId>> = BTreeMap::new();
        while let Some(id) = queue.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            order.push(id);
            let node = nodes
                .get(id)
                .ok_or_else(|| Error::Metadata(format!("{id} is not in the dependency graph")))?;
            let deps: Vec<&PackageId> = node
                .deps
                .iter()
                .filter(|d| d.dep_kinds.iter().any(|k| k.kind == DependencyKind::Normal))
                .map(|d| &d.pkg)
                .collect();
            queue.extend(deps.iter().copied());
            edges.insert(id, deps);
        }

        order
            .into_iter()
            .map(|id| {
                let package = packages
                    .get(id)
                    .ok_or_else(|| Error::Metadata(format!("{id} has no package entry")))?;
                let name = package.name.to_string();
                let version = package.version.to_string();
                let depends_on = edges
                    .get(id)
                    .into_iter()
                    .flatten()
                    .filter_map(|dep| packages.get(dep))
                    .map(|p| purl(&p.name, &p.version.to_string()))
                    .collect();
                Ok(Crate {
                    checksum: self
                        .checksums
                        .get(&(name.clone(), version.clone()))
                        .cloned(),
                    source: package.source.as_ref().map(|s| s.repr.clone()),
                    license: package.license.clone(),
                    name,
                    version,
                    depends_on,
                })
            })
            .collect()
    }

    /// `cargo build --locked --release --target T` of the given services' binaries; returns the directory
    /// holding them. Cargo's output goes to our stderr.
    pub fn build_release(
        &self,
        cargo: &Path,
        target: Target,
        services: &[Service],
    ) -> Result<PathBuf> {
        let mut command = Command::new(cargo);
        command.current_dir(self.root()).args([
            "build",
            "--locked",
            "--release",
            "--target",
            target.triple(),
        ]);
        for service in services {
            command.args(["-p", service.package, "--bin", service.bin]);
        }
        if target == Target::Musl {
            command.env("CC_x86_64_unknown_linux_musl", "musl-gcc");
        }
        let shown = format!(
            "cargo build --locked --release --target {} {}",
            target.triple(),
            services
                .iter()
                .map(|s| format!("-p {} --bin {}", s.package, s.bin))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let status = command
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| Error::ToolMissing {
                tool: cargo.display().to_string(),
                why: e.to_string(),
            })?;
        if !status.success() {
            return Err(Error::ToolFailed {
                command: shown,
                status: status.to_string(),
                detail: String::new(),
            });
        }
        Ok(self.release_dir(target))
    }
}

/// `[workspace.package] repository` of the workspace manifest in `root`.
fn workspace_repository(root: &Path) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Manifest {
        workspace: Option<WorkspaceTable>,
    }
    #[derive(Deserialize)]
    struct WorkspaceTable {
        package: Option<PackageTable>,
    }
    #[derive(Deserialize)]
    struct PackageTable {
        repository: Option<String>,
    }
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| Error::Invalid {
        path,
        reason: e.to_string(),
    })?;
    Ok(manifest
        .workspace
        .and_then(|w| w.package)
        .and_then(|p| p.repository))
}

/// The commit `HEAD` names and its commit time, if `dir` is in a git checkout.
pub fn git_head(dir: &Path) -> Option<(String, i64)> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%H %ct"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let (commit, time) = text.trim().split_once(' ')?;
    Some((commit.to_owned(), time.parse().ok()?))
}
