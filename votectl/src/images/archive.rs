//! One tar that is both an OCI image layout and a `docker save` archive.
//!
//! Layout of the archive (entries sorted, every mtime = the image's `created`):
//! ```text
//! blobs/sha256/<layer: base>   uncompressed tar (digest = DiffID, so both formats name it the same)
//! blobs/sha256/<layer: app>
//! blobs/sha256/<config>        OCI image config (also a valid Docker config)
//! blobs/sha256/<manifest>      OCI image manifest
//! index.json                   OCI index: the manifest, named by the containerd/podman annotations
//! manifest.json                docker-save: Config, RepoTags, Layers (paths of the same blobs)
//! oci-layout                   {"imageLayoutVersion":"1.0.0"}
//! repositories                 docker-save (legacy): repository -> tag -> top layer
//! ```
//! Layers are uncompressed on purpose: a docker-archive reader checks layers against the config's
//! DiffIDs, which only hold for uncompressed layers; and no gzip implementation detail can change a
//! digest.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest,
    HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, Os, RootFsBuilder,
};
use serde_json::json;

use super::layer::Layer;
use super::rootfs::{CA_BUNDLE, RootFs};
use super::{
    BIN_DIR, BuiltImage, Error, ImageSpec, Result, canonical_json, image_user, sha256_hex,
};

/// The annotation containerd, `ctr import` (kind, k3d) and podman read the full image name from.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A blob and its descriptor fields.
struct Blob {
    hex: String,
    bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            hex: sha256_hex(&bytes),
            bytes,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", self.hex)
    }

    fn path(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }

    fn descriptor(&self, media_type: MediaType) -> Result<Descriptor> {
        DescriptorBuilder::default()
            .media_type(media_type)
            .digest(digest(&self.digest())?)
            .size(self.bytes.len() as u64)
            .build()
            .map_err(encode("descriptor"))
    }
}

/// RFC 3339 UTC time of `epoch` seconds.
pub fn rfc3339(epoch: i64) -> Result<String> {
    let time = time::OffsetDateTime::from_unix_timestamp(epoch)
        .map_err(|e| Error::Usage(format!("image time {epoch}: {e}")))?;
    time.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::Usage(format!("image time {epoch}: {e}")))
}

/// Writes `<out_dir>/<service>.tar` for `spec` with the files of `fs`; the SBOM is left to the caller.
pub fn write(spec: &ImageSpec, fs: &RootFs, out_dir: &Path) -> Result<BuiltImage> {
    let created = rfc3339(spec.created)?;
    let base = Blob::new(fs.base.to_tar(spec.created)?);
    let app = Blob::new(fs.app.to_tar(spec.created)?);
    let layers_size = (base.bytes.len() + app.bytes.len()) as u64;

    let mut config = ConfigBuilder::default()
        .user(image_user())
        .entrypoint(vec![fs.binary_path.clone()])
        .env(vec![
            format!("PATH={BIN_DIR}:/usr/bin:/bin"),
            format!("SSL_CERT_FILE={CA_BUNDLE}"),
        ])
        .working_dir("/")
        .labels(
            spec.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        );
    if let Some(port) = spec.service.port {
        config = config.exposed_ports(vec![format!("{port}/tcp")]);
    }
    let config = config.build().map_err(encode("config"))?;
    let history = |created_by: String| {
        HistoryBuilder::default()
            .created(created.clone())
            .created_by(created_by)
            .build()
            .map_err(encode("history"))
    };
    let image_config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![base.digest(), app.digest()])
                .build()
                .map_err(encode("rootfs"))?,
        )
        .history(vec![
            history(format!(
                "votectl images build: base ({} linkage; users root and nonroot, CA certificates, /tmp)",
                fs.linkage.label()
            ))?,
            history(format!("votectl images build: {}", fs.binary_path))?,
        ])
        .build()
        .map_err(encode("config"))?;
    let config = Blob::new(canonical_json(&image_config)?);

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor(MediaType::ImageConfig)?)
        .layers(vec![
            base.descriptor(MediaType::ImageLayer)?,
            app.descriptor(MediaType::ImageLayer)?,
        ])
        .build()
        .map_err(encode("manifest"))?;
    let manifest = Blob::new(canonical_json(&manifest)?);

    let repository = spec.service.repository();
    let tag = format!("sha-{}", &config.hex[..12]);
    let familiar = format!("{repository}:{tag}");
    let full_name = format!("docker.io/{familiar}");

    let mut manifest_descriptor = manifest.descriptor(MediaType::ImageManifest)?;
    manifest_descriptor.set_annotations(Some(HashMap::from([
        (ANNOTATION_CONTAINERD_NAME.to_owned(), full_name),
        (ANNOTATION_REF_NAME.to_owned(), tag.clone()),
    ])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_descriptor])
        .build()
        .map_err(encode("index"))?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(encode("oci-layout"))?;
    let docker_manifest = json!([{
        "Config": config.path(),
        "RepoTags": [familiar],
        "Layers": [base.path(), app.path()],
    }]);
    let repositories = json!({ repository.clone(): { tag.clone(): app.hex } });

    let mut outer = Layer::new();
    outer.dir("/blobs", 0o755)?;
    outer.dir("/blobs/sha256", 0o755)?;
    for blob in [&base, &app, &config, &manifest] {
        outer.file(&format!("/{}", blob.path()), 0o644, blob.bytes.clone())?;
    }
    outer.file("/oci-layout", 0o644, canonical_json(&layout)?)?;
    outer.file("/index.json", 0o644, canonical_json(&index)?)?;
    outer.file("/manifest.json", 0o644, canonical_json(&docker_manifest)?)?;
    outer.file("/repositories", 0o644, canonical_json(&repositories)?)?;
    let archive_bytes = outer.to_tar(spec.created)?;

    std::fs::create_dir_all(out_dir).map_err(|source| Error::Write {
        path: out_dir.to_owned(),
        source,
    })?;
    let archive_name = format!("{}.tar", spec.service.name);
    super::write_atomically(&out_dir.join(&archive_name), &archive_bytes)?;

    Ok(BuiltImage {
        service: spec.service.name.to_owned(),
        repository,
        tag,
        manifest_digest: manifest.digest(),
        config_digest: config.digest(),
        archive: archive_name,
        sbom: String::new(),
        size: archive_bytes.len() as u64,
        layers_size,
        user: image_user(),
        linkage: fs.linkage.label().to_owned(),
    })
}

/// The labels every image carries (OCI pre-defined annotation keys).
pub fn oci_labels(
    service: &str,
    source: &str,
    revision: &str,
    version: &str,
    created_epoch: i64,
    licenses: Option<&str>,
) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::from([
        (
            "org.opencontainers.image.title".to_owned(),
            format!("votectl {service}"),
        ),
        (
            "org.opencontainers.image.source".to_owned(),
            source.to_owned(),
        ),
        (
            "org.opencontainers.image.revision".to_owned(),
            revision.to_owned(),
        ),
        (
            "org.opencontainers.image.version".to_owned(),
            version.to_owned(),
        ),
        (
            "org.opencontainers.image.created".to_owned(),
            rfc3339(created_epoch)?,
        ),
    ]);
    if let Some(licenses) = licenses {
        labels.insert(
            "org.opencontainers.image.licenses".to_owned(),
            licenses.to_owned(),
        );
    }
    Ok(labels)
}

fn digest(text: &str) -> Result<Digest> {
    Digest::from_str(text).map_err(encode("digest"))
}

fn encode<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Encode {
        what,
        reason: e.to_string(),
    }
}
