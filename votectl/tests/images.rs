//! `votectl images`, checked with the real tools: every archive is accepted by skopeo (as
//! `oci-archive:` and `docker-archive:`) and by `podman load`; two builds are byte-identical; every image
//! runs under podman the way the manifests run it (user 65532, read-only root, no capabilities,
//! no-new-privileges) and the services answer `/health`, the api against real Redis and PostgreSQL.
//!
//! The release build is expensive (2 cores), so `votectl images build` runs once per test binary
//! (`release_images`) and the tests share its archives; the reproducibility and glibc tests use the
//! debug `votectl` binary cargo already built for this test.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use vote_contract::deploy::{NONROOT_GID, NONROOT_UID};
use vote_contract::http::{ResultsResponse, path};
use vote_contract::settings::{port, var};
use votectl::images::{self, BuildOptions, BuiltImage};

const MAX_IMAGE_BYTES: u64 = 20_000_000;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("votectl lives in the workspace")
        .to_owned()
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        output.status.success(),
        "{shown} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json_of(cmd: &mut Command) -> Value {
    let output = run(cmd);
    serde_json::from_slice(&output.stdout).expect("the tool prints JSON")
}

/// All four images from a real `votectl images build` (which runs `cargo build --locked --release`),
/// in a directory of this process: other test processes of the same checkout may run at the same time.
fn release_images() -> &'static (PathBuf, Vec<BuiltImage>) {
    static BUILT: OnceLock<(PathBuf, Vec<BuiltImage>)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_release_dirs(&tmp);
        let out = tmp.join(format!("images-release-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let output = run(Command::new(env!("CARGO_BIN_EXE_votectl"))
            .current_dir(workspace_root())
            .args(["images", "build", "-o", "json", "--out-dir"])
            .arg(&out));
        let built: Vec<BuiltImage> =
            serde_json::from_slice(&output.stdout).expect("images build -o json");
        assert_eq!(images::read_index(&out).unwrap(), sorted(built.clone()));
        (out, built)
    })
}

/// Removes `images-release-<pid>` directories of test processes that are gone.
fn remove_stale_release_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("images-release-")
            && pid.parse::<u32>().is_ok()
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Held by every test that loads images into podman, across test processes (an flock): images
/// are named by their content, so `podman rmi -f` in one test's cleanup would otherwise remove the
/// images, and their containers, from under another test.
fn podman_lock() -> nix::fcntl::Flock<std::fs::File> {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("images-podman.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .unwrap()
}

fn sorted(mut images: Vec<BuiltImage>) -> Vec<BuiltImage> {
    images.sort_by(|a, b| a.service.cmp(&b.service));
    images
}

/// Builds the `votectl` image with the library from `binary` (a dynamically linked glibc executable).
fn image_of(binary: &Path, out: &Path, epoch: i64) -> BuiltImage {
    let opts = BuildOptions {
        cargo: PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())),
        workspace_dir: workspace_root(),
        out_dir: out.to_owned(),
        services: vec![images::service("votectl").unwrap()],
        target: None,
        bin_dir: Some(binary.parent().unwrap().to_owned()),
        source_date_epoch: Some(epoch),
        ca_certificates: "/etc/ssl/certs/ca-certificates.crt".into(),
    };
    let mut built = images::build(&opts).unwrap();
    assert_eq!(built.len(), 1);
    built.remove(0)
}

/// The debug `votectl` cargo built for this test: runs `--version` in the image.
fn debug_image(out: &Path, epoch: i64) -> BuiltImage {
    image_of(Path::new(env!("CARGO_BIN_EXE_votectl")), out, epoch)
}

/// A small glibc executable named `votectl` (a copy of the host's `true`), where what is tested does
/// not depend on which program is inside and hashing the 40 MB debug binary would only cost time.
fn small_image(out: &Path, epoch: i64) -> BuiltImage {
    let bin = out.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/true", bin.join("votectl")).unwrap();
    image_of(&bin.join("votectl"), out, epoch)
}

/// Path -> (mode, uid, gid, content) of each entry of a tar.
type TarEntries = BTreeMap<String, (u32, u64, u64, Vec<u8>)>;

/// Entries of a tar (the archive itself, or a layer inside it).
fn tar_entries(bytes: &[u8]) -> TarEntries {
    let mut archive = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let header = entry.header().clone();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        out.insert(
            path,
            (
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                content,
            ),
        );
    }
    out
}

/// The layers of an archive, in order, as tar entry maps.
fn layers(archive: &Path) -> Vec<TarEntries> {
    let outer = tar_entries(&std::fs::read(archive).unwrap());
    let manifest: Value = serde_json::from_slice(&outer["manifest.json"].3).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| tar_entries(&outer[l.as_str().unwrap()].3))
        .collect()
}

/// Removes podman images (by reference) when dropped.
struct PodmanImages(Vec<String>);

impl Drop for PodmanImages {
    fn drop(&mut self) {
        for image in &self.0 {
            // Not `-f`: an image still used by a container (of another test process) stays.
            let _ = Command::new("podman").args(["rmi", image]).output();
        }
    }
}

/// A running container, removed when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.0])
            .output();
    }
}

impl Container {
    fn logs(&self) -> String {
        let output = Command::new("podman")
            .args(["logs", &self.0])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

/// `podman run` with the restrictions the manifests put on every pod (and the ulimits this machine
/// needs), on the host network so the container reaches the test's servers on 127.0.0.1.
fn hardened_run(detach: bool, name: Option<&str>, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "run", "--pull=never"]);
    // A detached container stays after it exits, so its log can be shown; `Container` removes it.
    cmd.arg(if detach { "-d" } else { "--rm" });
    if let Some(name) = name {
        cmd.args(["--name", name]);
    }
    cmd.args([
        "--user",
        &format!("{NONROOT_UID}:{NONROOT_GID}"),
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt",
        "no-new-privileges",
        "--ulimit",
        "nofile=4096:8192",
        "--ulimit",
        "nproc=1024:2048",
        "--network",
        "host",
    ]);
    for (key, value) in env {
        cmd.args(["-e", &format!("{key}={value}")]);
    }
    cmd
}

fn podman_name(image: &BuiltImage) -> String {
    format!("docker.io/{}", image.reference())
}

fn start(image: &BuiltImage, env: &[(&str, String)]) -> Container {
    let name = format!(
        "votectl-images-test-{}-{}",
        image.service,
        std::process::id()
    );
    let container = Container(name.clone());
    run(hardened_run(true, Some(&name), env).arg(podman_name(image)));
    container
}

/// Polls `url` until it answers 200, or panics with the container's log.
async fn wait_ok(url: &str, container: &Container) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => last = format!("status {}", resp.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "{url} did not answer 200 within 60 s (last: {last}); log of {}:\n{}",
        container.0,
        container.logs()
    );
}

#[test]
fn two_builds_of_the_same_binaries_are_identical() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = small_image(a.path(), 1_700_000_000);
    let second = small_image(b.path(), 1_700_000_000);
    assert_eq!(first, second);
    for file in ["votectl.tar", "votectl.cdx.json", images::INDEX_FILE] {
        assert!(
            std::fs::read(a.path().join(file)).unwrap()
                == std::fs::read(b.path().join(file)).unwrap(),
            "{file} differs between two builds"
        );
    }
    // The tag follows the content: another time is another image.
    let later = small_image(b.path(), 1_700_000_001);
    assert_ne!(later.config_digest, first.config_digest);
    assert_ne!(later.tag, first.tag);
    assert_eq!(
        later.tag,
        format!("sha-{}", &later.config_digest["sha256:".len()..][..12])
    );
}

#[test]
fn a_dynamic_binary_gets_its_loader_and_libraries_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let image = debug_image(dir.path(), 1_700_000_100);
    assert_eq!(image.linkage, "dynamic");
    let archive = dir.path().join(&image.archive);
    let layers = layers(&archive);
    let base = &layers[0];
    let interpreter = ["lib64/ld-linux-x86-64.so.2"];
    for path in interpreter {
        assert!(base.contains_key(path), "{path} missing: {:?}", base.keys());
    }
    assert!(
        base.keys().any(|p| p.ends_with("/libc.so.6")),
        "{:?}",
        base.keys()
    );
    assert!(base.contains_key("etc/nsswitch.conf"));

    let _serial = podman_lock();
    let _cleanup = PodmanImages(vec![podman_name(&image)]);
    run(Command::new("podman").arg("load").arg("-i").arg(&archive));
    let output = run(hardened_run(false, None, &[])
        .arg(podman_name(&image))
        .arg("--version"));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("votectl {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn release_images_are_static_minimal_small_and_have_an_sbom() {
    let (dir, built) = release_images();
    assert_eq!(
        built
            .iter()
            .map(|i| i.service.as_str())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["api", "consumer", "frontend", "votectl"])
    );
    let mut bases = BTreeSet::new();
    for image in built {
        eprintln!(
            "{} {} {} bytes (layers {})",
            image.reference(),
            image.manifest_digest,
            image.size,
            image.layers_size
        );
        assert_eq!(image.linkage, "static", "{}", image.service);
        assert_eq!(image.user, format!("{NONROOT_UID}:{NONROOT_GID}"));
        if image.service != "votectl" {
            assert!(
                image.size < MAX_IMAGE_BYTES,
                "{} is {} bytes, over the 20 MB goal",
                image.service,
                image.size
            );
        }
        let layers = layers(&dir.join(&image.archive));
        assert_eq!(layers.len(), 2);
        let bin = images::service(&image.service).unwrap().bin;
        let files: Vec<&str> = layers[0].keys().map(String::as_str).collect();
        assert_eq!(
            files,
            [
                "etc/",
                "etc/group",
                "etc/passwd",
                "etc/ssl/",
                "etc/ssl/certs/",
                "etc/ssl/certs/ca-certificates.crt",
                "home/",
                "home/nonroot/",
                "tmp/"
            ]
        );
        let app: Vec<String> = layers[1].keys().cloned().collect();
        assert_eq!(
            app,
            [
                "usr/".to_owned(),
                "usr/local/".to_owned(),
                "usr/local/bin/".to_owned(),
                format!("usr/local/bin/{bin}")
            ]
        );
        let base = &layers[0];
        assert_eq!(base["tmp/"].0, 0o1777);
        assert_eq!(
            (base["home/nonroot/"].1, base["home/nonroot/"].2),
            (u64::from(NONROOT_UID), u64::from(NONROOT_GID))
        );
        let passwd = String::from_utf8(base["etc/passwd"].3.clone()).unwrap();
        assert!(passwd.contains(&format!("nonroot:x:{NONROOT_UID}:{NONROOT_GID}:")));
        assert_eq!(
            base["etc/ssl/certs/ca-certificates.crt"].3,
            std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap()
        );
        for (path, (mode, uid, gid, _)) in layers.iter().flatten() {
            if path != "home/nonroot/" {
                assert_eq!((*uid, *gid), (0, 0), "{path} must be owned by root");
            }
            assert_eq!(mode & 0o002, if path == "tmp/" { 2 } else { 0 }, "{path}");
        }
        let outer = tar_entries(&std::fs::read(dir.join(&image.archive)).unwrap());
        bases.insert(sha(&outer_layer(&outer, 0)));

        // SBOM: the crates of the binary's package, and every system file with its hash.
        let bom: Value =
            serde_json::from_slice(&std::fs::read(dir.join(&image.sbom)).unwrap()).unwrap();
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(bom["metadata"]["component"]["version"], image.tag.as_str());
        let components = bom["components"].as_array().unwrap();
        let purls: BTreeSet<&str> = components
            .iter()
            .filter_map(|c| c["purl"].as_str())
            .collect();
        let package = images::service(&image.service).unwrap().package;
        assert!(
            purls
                .iter()
                .any(|p| p.starts_with(&format!("pkg:cargo/{package}@")))
        );
        assert!(purls.iter().any(|p| p.starts_with("pkg:cargo/tokio@")));
        assert!(
            !purls
                .iter()
                .any(|p| p.starts_with("pkg:cargo/vote-testkit@")),
            "dev-dependencies are not in the binary"
        );
        let registry_crates = components
            .iter()
            .filter(|c| c["type"] == "library")
            .filter(|c| c["properties"][0]["value"] != "workspace");
        for krate in registry_crates {
            assert_eq!(
                krate["hashes"][0]["content"].as_str().map(str::len),
                Some(64),
                "{krate}"
            );
        }
        let ca = components
            .iter()
            .find(|c| c["name"] == "/etc/ssl/certs/ca-certificates.crt")
            .expect("the CA bundle is in the SBOM");
        assert_eq!(
            ca["hashes"][0]["content"],
            images::sha256_hex(&std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap())
        );
        let binary = components
            .iter()
            .find(|c| c["name"] == format!("/usr/local/bin/{bin}"))
            .expect("the binary is in the SBOM");
        assert_eq!(
            binary["hashes"][0]["content"],
            sha(&layers[1][&format!("usr/local/bin/{bin}")].3)
        );
    }
    assert_eq!(bases.len(), 1, "static images share one base layer");
}

fn outer_layer(outer: &TarEntries, index: usize) -> Vec<u8> {
    let manifest: Value = serde_json::from_slice(&outer["manifest.json"].3).unwrap();
    outer[manifest[0]["Layers"][index].as_str().unwrap()]
        .3
        .clone()
}

fn sha(bytes: &[u8]) -> String {
    images::sha256_hex(bytes)
}

#[test]
fn skopeo_and_podman_accept_every_archive() {
    let (dir, built) = release_images();
    let _serial = podman_lock();
    let cleanup = PodmanImages(built.iter().map(podman_name).collect());
    for image in built {
        let archive = dir.join(&image.archive);
        let service = images::service(&image.service).unwrap();

        let oci = json_of(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("oci-archive:{}", archive.display())),
        );
        assert_eq!(oci["Digest"], image.manifest_digest.as_str());
        let docker = json_of(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("docker-archive:{}", archive.display())),
        );
        assert_eq!(
            oci["Layers"], docker["Layers"],
            "both formats name the same layers"
        );
        assert_eq!(oci["Labels"], docker["Labels"]);
        let labels = &oci["Labels"];
        for key in ["source", "revision", "version", "created"] {
            let value = labels[format!("org.opencontainers.image.{key}")]
                .as_str()
                .unwrap_or_default();
            assert!(!value.is_empty() && value != "unknown", "{key}: {labels}");
        }

        let config = json_of(
            Command::new("skopeo")
                .args(["inspect", "--config"])
                .arg(format!("oci-archive:{}", archive.display())),
        );
        assert_eq!(
            config["config"]["User"],
            format!("{NONROOT_UID}:{NONROOT_GID}")
        );
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!([format!("/usr/local/bin/{}", service.bin)])
        );
        let ports: Vec<String> = config["config"]["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            ports,
            service
                .port
                .map(|p| vec![format!("{p}/tcp")])
                .unwrap_or_default()
        );

        let loaded = run(Command::new("podman").arg("load").arg("-i").arg(&archive));
        let said = String::from_utf8_lossy(&loaded.stdout);
        assert!(
            said.contains(&podman_name(image)),
            "podman load said: {said}"
        );
        let id = run(Command::new("podman").args([
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Config.User}}",
            &podman_name(image),
        ]));
        assert_eq!(
            String::from_utf8_lossy(&id.stdout).trim(),
            format!(
                "{} {NONROOT_UID}:{NONROOT_GID}",
                &image.config_digest["sha256:".len()..]
            )
        );
    }
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_image_runs_hardened_under_podman_and_answers_health() {
    let (dir, built) = release_images();
    let by_service: BTreeMap<&str, &BuiltImage> =
        built.iter().map(|i| (i.service.as_str(), i)).collect();
    let _serial = tokio::task::spawn_blocking(podman_lock).await.unwrap();
    let _cleanup = PodmanImages(built.iter().map(podman_name).collect());
    for image in built {
        run(Command::new("podman")
            .arg("load")
            .arg("-i")
            .arg(dir.join(&image.archive)));
    }

    let redis = vote_testkit::Redis::start().await;
    let pg = vote_testkit::Postgres::start().await;
    let database_url = pg.create_database().await;
    let api_port = vote_testkit::free_port();
    let consumer_port = vote_testkit::free_port();
    let frontend_port = vote_testkit::free_port();
    assert!(![port::API, port::CONSUMER, port::FRONTEND].contains(&api_port));

    let api = start(
        by_service["api"],
        &[
            (var::PORT, api_port.to_string()),
            (var::REDIS_URL, redis.url()),
            (var::DATABASE_URL, database_url.clone()),
        ],
    );
    let api_url = format!("http://127.0.0.1:{api_port}");
    wait_ok(&format!("{api_url}{}", path::HEALTH), &api).await;

    let consumer = start(
        by_service["consumer"],
        &[
            (var::PORT, consumer_port.to_string()),
            (var::REDIS_URL, redis.url()),
            (var::DATABASE_URL, database_url.clone()),
        ],
    );
    wait_ok(
        &format!("http://127.0.0.1:{consumer_port}{}", path::HEALTH),
        &consumer,
    )
    .await;

    let frontend = start(
        by_service["frontend"],
        &[
            (var::PORT, frontend_port.to_string()),
            (var::API_URL, api_url.clone()),
        ],
    );
    let frontend_url = format!("http://127.0.0.1:{frontend_port}");
    wait_ok(&format!("{frontend_url}{}", path::HEALTH), &frontend).await;
    // Ready means the frontend reached the api from inside its container.
    wait_ok(&format!("{frontend_url}{}", path::READY), &frontend).await;

    // A vote goes through the containers: api -> Redis -> consumer -> PostgreSQL -> api.
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{api_url}{}", path::VOTE))
        .json(&serde_json::json!({ "option": "dogs" }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "vote: {}", resp.status());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let results: ResultsResponse = client
            .get(format!("{api_url}{}", path::RESULTS))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let dogs = results.results.iter().find(|r| r.option == "dogs");
        if dogs.is_some_and(|d| d.count == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the vote was not counted in 30 s: {results:?}\nconsumer log:\n{}",
            consumer.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // votectl's image (the network-policy probe) runs under the same restrictions.
    let output = run(hardened_run(false, None, &[])
        .arg(podman_name(by_service["votectl"]))
        .arg("--version"));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("votectl "));

    drop((frontend, consumer, api));
}

fn votectl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_votectl"));
    cmd.current_dir(workspace_root());
    cmd
}

/// An images.json naming one archive (the loaders are checked before any archive is read).
fn fake_index(dir: &Path) {
    let image = BuiltImage {
        service: "api".into(),
        repository: "votectl/api".into(),
        tag: "sha-000000000000".into(),
        manifest_digest: format!("sha256:{}", "0".repeat(64)),
        config_digest: format!("sha256:{}", "0".repeat(64)),
        archive: "api.tar".into(),
        sbom: "api.cdx.json".into(),
        size: 1,
        layers_size: 1,
        user: "65532:65532".into(),
        linkage: "static".into(),
    };
    images::write_index(dir, &[image]).unwrap();
}

#[test]
fn load_names_a_missing_loader_in_one_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    fake_index(dir.path());
    let empty_path = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    for (context, tool, cluster) in [
        ("kind-dev", "kind", "kind cluster `dev`"),
        ("k3d-votes", "k3d", "k3d cluster `votes`"),
        ("minikube", "minikube", "minikube profile `minikube`"),
    ] {
        std::fs::write(
            &kubeconfig,
            format!("apiVersion: v1\nkind: Config\ncurrent-context: {context}\n"),
        )
        .unwrap();
        let output = votectl()
            .args(["images", "load", "--dir"])
            .arg(dir.path())
            .env("KUBECONFIG", &kubeconfig)
            .env("PATH", empty_path.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{context}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("`{tool}` not found")) && stderr.contains(cluster),
            "{stderr}"
        );
    }

    // A context that names no local cluster: a usage error asking for --into.
    std::fs::write(&kubeconfig, "current-context: prod-eu\n").unwrap();
    let output = votectl()
        .args(["images", "load", "--dir"])
        .arg(dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("prod-eu") && stderr.contains("--into"),
        "{stderr}"
    );

    // No images built yet.
    let nothing = tempfile::tempdir().unwrap();
    let output = votectl()
        .args(["images", "load", "--into", "podman", "--dir"])
        .arg(nothing.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("votectl images build"));
}

#[test]
fn load_into_podman_loads_what_build_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let image = small_image(dir.path(), 1_700_000_200);
    let _serial = podman_lock();
    let _cleanup = PodmanImages(vec![podman_name(&image)]);
    let output = run(votectl()
        .args(["images", "load", "--into", "podman", "--dir"])
        .arg(dir.path()));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&image.reference()),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    run(Command::new("podman").args(["image", "exists", &podman_name(&image)]));
}

#[test]
fn build_refuses_bad_input_naming_it() {
    let output = votectl()
        .args(["images", "build", "--service", "database"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("database"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("votectl"), "#!/bin/sh\necho not a binary\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = votectl()
        .args(["images", "build", "--service", "votectl", "--bin-dir"])
        .arg(dir.path())
        .arg("--out-dir")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&dir.path().join("votectl").display().to_string()),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "nothing is written on error"
    );

    let missing = votectl()
        .args([
            "images",
            "build",
            "--service",
            "votectl",
            "--bin-dir",
            "/nonexistent/bin",
        ])
        .arg("--out-dir")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/bin/votectl"));
}
