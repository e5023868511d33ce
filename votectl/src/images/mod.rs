//! Container images without a container engine: `votectl images build` and `votectl images load`.
//!
//! An image here is one tar file that is at the same time an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) and a `docker save` archive (`manifest.json` and `repositories` naming the same blobs),
//! so every loader accepts it: `podman load`, `kind load image-archive`, `minikube image load`,
//! `k3d image import`, `skopeo` with `oci-archive:` or `docker-archive:`.
//!
//! Invariants:
//! - Reproducible: the same binaries, labels and `created` time give byte-identical archives (sorted tar
//!   entries, fixed mtimes, owner 0 except the nonroot home, uncompressed layers, JSON with sorted keys).
//! - The tag is derived from the config digest (`sha-<12 hex>`), so a cluster that already holds an older
//!   image under the same name can never serve it for a new build (the `latest` staleness of
//!   `minikube image load` / `kind load`).
//! - The image user is [`vote_contract::deploy::NONROOT_UID`]:[`vote_contract::deploy::NONROOT_GID`], the
//!   same constants the manifests render as `runAsUser`/`runAsGroup`.
//! - Nothing in the image but the binary and what it needs: `/etc/passwd`, `/etc/group`, CA certificates,
//!   `/tmp`, the nonroot home and, for a dynamically linked binary, the shared libraries it names.

pub mod archive;
pub mod cargo;
pub mod elf;
pub mod layer;
pub mod load;
pub mod rootfs;
pub mod sbom;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vote_contract::deploy;
use vote_contract::settings::port;

/// Errors of image assembly and loading; each names the file, tool or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an x86-64 Linux ELF executable: {reason}")]
    NotElf { path: PathBuf, reason: String },
    #[error("{library} (needed by {needed_by}) was not found by ldd")]
    MissingLibrary { library: String, needed_by: PathBuf },
    #[error("`{tool}` not found on PATH: {why}")]
    ToolMissing { tool: String, why: String },
    #[error("`{command}` failed ({status}){detail}")]
    ToolFailed {
        command: String,
        status: String,
        detail: String,
    },
    #[error("cargo metadata: {0}")]
    Metadata(String),
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
    #[error("cannot encode the image {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One image `votectl images build` knows how to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// Short name: `api`, `consumer`, `frontend`, `votectl`.
    pub name: &'static str,
    /// Cargo package that holds the binary.
    pub package: &'static str,
    /// Binary (target) name, also its file name in the image under [`BIN_DIR`].
    pub bin: &'static str,
    /// Port the service listens on by default, exposed in the image config.
    pub port: Option<u16>,
}

impl Service {
    /// Repository part of the image reference, e.g. `votectl/api`.
    pub fn repository(&self) -> String {
        format!("{REPOSITORY_PREFIX}/{}", self.name)
    }
}

/// Every image: the three services and votectl itself (the network-policy probes run it in-cluster).
pub const SERVICES: [Service; 4] = [
    Service {
        name: deploy::API,
        package: "vote-api",
        bin: "vote-api",
        port: Some(port::API),
    },
    Service {
        name: deploy::CONSUMER,
        package: "vote-consumer",
        bin: "vote-consumer",
        port: Some(port::CONSUMER),
    },
    Service {
        name: deploy::FRONTEND,
        package: "vote-frontend",
        bin: "vote-frontend",
        port: Some(port::FRONTEND),
    },
    Service {
        name: "votectl",
        package: "votectl",
        bin: "votectl",
        port: None,
    },
];

/// Image names are `votectl/<service>`.
pub const REPOSITORY_PREFIX: &str = "votectl";
/// Where the binary lives in the image.
pub const BIN_DIR: &str = "/usr/local/bin";
/// The index `images build` writes beside the archives and `images load` (and `up`) read.
pub const INDEX_FILE: &str = "images.json";

/// Looks a service up by its short name.
pub fn service(name: &str) -> Option<Service> {
    SERVICES.iter().copied().find(|s| s.name == name)
}

/// `user` field of every image config: `65532:65532`.
pub fn image_user() -> String {
    format!("{}:{}", deploy::NONROOT_UID, deploy::NONROOT_GID)
}

/// Everything that goes into one image. Building the same spec twice gives the same bytes.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub service: Service,
    /// The executable to put in the image.
    pub binary: PathBuf,
    /// The host's CA bundle, copied to `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_certificates: PathBuf,
    /// Image creation time, seconds since the epoch (`SOURCE_DATE_EPOCH` or the commit time); also every
    /// tar entry's mtime.
    pub created: i64,
    /// `org.opencontainers.image.*` and other labels.
    pub labels: BTreeMap<String, String>,
    /// Crates compiled into the binary, for the SBOM.
    pub crates: Vec<sbom::Crate>,
    /// Name and version of the tool that built the image, for the SBOM.
    pub tool_version: String,
}

/// One written image, as listed in `images.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltImage {
    /// Short service name (`api`).
    pub service: String,
    /// `votectl/api`.
    pub repository: String,
    /// `sha-<12 hex of the config digest>`.
    pub tag: String,
    /// Digest of the image manifest (`sha256:…`).
    pub manifest_digest: String,
    /// Digest of the image config, i.e. the image ID (`sha256:…`).
    pub config_digest: String,
    /// Archive file name, relative to the index.
    pub archive: String,
    /// SBOM file name, relative to the index.
    pub sbom: String,
    /// Archive size in bytes (what a loader reads).
    pub size: u64,
    /// Sum of the uncompressed layer sizes (the image's size on disk once loaded).
    pub layers_size: u64,
    /// The image config's `User` (`65532:65532`).
    pub user: String,
    /// `static` (musl) or `dynamic` (glibc and its libraries).
    pub linkage: String,
}

impl BuiltImage {
    /// `votectl/api:sha-0123456789ab`, the reference the manifests use.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// What `votectl images build` (and `votectl up`) asks for.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The cargo to run (`CARGO` when run through cargo).
    pub cargo: PathBuf,
    /// A directory inside the workspace.
    pub workspace_dir: PathBuf,
    pub out_dir: PathBuf,
    pub services: Vec<Service>,
    /// `None`: musl where available, else glibc (or, with `bin_dir`, what the binaries are).
    pub target: Option<cargo::Target>,
    /// Use the binaries already in this directory instead of running `cargo build`.
    pub bin_dir: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`; without it the commit time of `HEAD`.
    pub source_date_epoch: Option<i64>,
    pub ca_certificates: PathBuf,
}

/// Builds the release binaries (unless `bin_dir` is given) and writes an archive and SBOM per service,
/// then updates `images.json` (entries of services not built this time are kept if their archive is
/// still there).
pub fn build(opts: &BuildOptions) -> Result<Vec<BuiltImage>> {
    if opts.services.is_empty() {
        return Err(Error::Usage("no service to build".to_owned()));
    }
    let target = match (opts.target, &opts.bin_dir) {
        (Some(target), _) => target,
        (None, Some(dir)) => {
            let first = dir.join(opts.services[0].bin);
            let bytes = std::fs::read(&first).map_err(|source| Error::Read {
                path: first.clone(),
                source,
            })?;
            match elf::inspect(&first, &bytes)? {
                elf::Linkage::Static => cargo::Target::Musl,
                elf::Linkage::Dynamic { .. } => cargo::Target::Gnu,
            }
        }
        (None, None) if cargo::musl_available(&opts.cargo) => cargo::Target::Musl,
        (None, None) => cargo::Target::Gnu,
    };
    let workspace = cargo::Workspace::load(&opts.cargo, &opts.workspace_dir, target)?;
    let bin_dir = match &opts.bin_dir {
        Some(dir) => dir.clone(),
        None => workspace.build_release(&opts.cargo, target, &opts.services)?,
    };
    let head = cargo::git_head(workspace.root());
    let created = match (opts.source_date_epoch, &head) {
        (Some(epoch), _) => epoch,
        (None, Some((_, time))) => *time,
        (None, None) => {
            return Err(Error::Usage(format!(
                "{} is not a git checkout: set SOURCE_DATE_EPOCH to date the images",
                workspace.root().display()
            )));
        }
    };
    let revision = head.map_or_else(|| "unknown".to_owned(), |(commit, _)| commit);

    std::fs::create_dir_all(&opts.out_dir).map_err(|source| Error::Write {
        path: opts.out_dir.clone(),
        source,
    })?;
    let mut built = Vec::new();
    for service in &opts.services {
        let (version, repository, license) = workspace.package_info(service.package)?;
        let source = repository.unwrap_or_else(|| "unknown".to_owned());
        let spec = ImageSpec {
            service: *service,
            binary: bin_dir.join(service.bin),
            ca_certificates: opts.ca_certificates.clone(),
            created,
            labels: archive::oci_labels(
                service.name,
                &source,
                &revision,
                &version,
                created,
                license.as_deref(),
            )?,
            crates: workspace.crates(service.package)?,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        built.push(assemble(&spec, &opts.out_dir)?);
    }

    let mut index: Vec<BuiltImage> = read_index(&opts.out_dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|old| {
            !built.iter().any(|new| new.service == old.service)
                && opts.out_dir.join(&old.archive).is_file()
        })
        .collect();
    index.extend(built.iter().cloned());
    write_index(&opts.out_dir, &index)?;
    Ok(built)
}

/// Assembles one image archive and its SBOM into `out_dir`.
pub fn assemble(spec: &ImageSpec, out_dir: &Path) -> Result<BuiltImage> {
    let fs = rootfs::RootFs::for_binary(spec)?;
    let image = archive::write(spec, &fs, out_dir)?;
    let sbom_name = format!("{}.cdx.json", spec.service.name);
    let bom = sbom::cyclonedx(spec, &fs, &image);
    let sbom_path = out_dir.join(&sbom_name);
    write_atomically(&sbom_path, &canonical_json(&bom)?)?;
    Ok(BuiltImage {
        sbom: sbom_name,
        ..image
    })
}

/// Writes `images.json` listing `images` (sorted by service name).
pub fn write_index(out_dir: &Path, images: &[BuiltImage]) -> Result<PathBuf> {
    let mut images = images.to_vec();
    images.sort_by(|a, b| a.service.cmp(&b.service));
    let path = out_dir.join(INDEX_FILE);
    let value = serde_json::to_value(&images).map_err(|e| Error::Encode {
        what: "index",
        reason: e.to_string(),
    })?;
    write_atomically(&path, &canonical_json(&value)?)?;
    Ok(path)
}

/// Reads the `images.json` that `images build` wrote into `dir`.
pub fn read_index(dir: &Path) -> Result<Vec<BuiltImage>> {
    let path = dir.join(INDEX_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::Usage(format!(
                "no images in {}: run `votectl images build` first",
                dir.display()
            ))
        } else {
            Error::Read {
                path: path.clone(),
                source,
            }
        }
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Invalid {
        path,
        reason: e.to_string(),
    })
}

/// JSON with object keys sorted at every level and a trailing newline, whatever the map type behind
/// `serde_json::Map` is (HashMaps inside oci-spec types would otherwise make digests random).
pub fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>> {
    fn sort(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    let value = serde_json::to_value(value).map_err(|e| Error::Encode {
        what: "JSON",
        reason: e.to_string(),
    })?;
    let mut out = serde_json::to_vec(&sort(value)).map_err(|e| Error::Encode {
        what: "JSON",
        reason: e.to_string(),
    })?;
    out.push(b'\n');
    Ok(out)
}

/// Writes through a temporary file in the same directory and renames, so a reader never sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).map_err(|source| Error::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}
