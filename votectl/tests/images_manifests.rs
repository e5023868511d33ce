//! The image and the manifests agree on the user: the original system's pods crash-looped because the
//! chart's `runAsUser` was not the image's user. Here an image is built, its config user is read back
//! from the archive, and the manifests rendered for that image must run its pods as that same user.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use votectl::images::{self, ImageSpec};
use votectl_manifests::{Layers, Object, Profile, Secrets, render};

/// `(uid, gid)` from the `User` field of the image config inside the archive.
fn config_user(archive: &std::path::Path) -> (i64, i64) {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut files = BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        files.insert(path, bytes);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let user = config["config"]["User"].as_str().unwrap();
    let (uid, gid) = user.split_once(':').expect("User is numeric uid:gid");
    (uid.parse().unwrap(), gid.parse().unwrap())
}

#[test]
fn rendered_pods_run_as_the_image_user() {
    let dir = tempfile::tempdir().unwrap();
    // Which binary is inside does not matter for the user; a small host executable keeps this fast.
    let binary = PathBuf::from("/bin/true");
    let mut sets = Vec::new();
    let mut built = BTreeMap::new();
    for name in ["api", "consumer", "frontend"] {
        let service = images::service(name).unwrap();
        let spec = ImageSpec {
            service,
            binary: binary.clone(),
            ca_certificates: "/etc/ssl/certs/ca-certificates.crt".into(),
            created: 1_700_000_000,
            labels: BTreeMap::new(),
            crates: Vec::new(),
            tool_version: "test".into(),
        };
        let image = images::assemble(&spec, dir.path()).unwrap();
        sets.push(format!(
            "images.{name}.repository={},images.{name}.tag={},images.{name}.pullPolicy=Never",
            image.repository, image.tag
        ));
        built.insert(
            image.reference(),
            config_user(&dir.path().join(&image.archive)),
        );
    }

    let loaded = Layers {
        profile: Profile::Default,
        sets,
        ..Layers::default()
    }
    .load()
    .unwrap();
    let rendered = render(&loaded.values, &Secrets::default()).unwrap();

    let mut seen = 0;
    for object in &rendered.objects {
        let Object::Deployment(_) = object else {
            continue;
        };
        let template = object.pod_template().unwrap();
        let pod = template.spec.as_ref().unwrap();
        let pod_security = pod.security_context.as_ref();
        for container in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            let Some(&(uid, gid)) = container.image.as_ref().and_then(|i| built.get(i)) else {
                continue;
            };
            seen += 1;
            let security = container.security_context.as_ref();
            let run_as_user = security
                .and_then(|s| s.run_as_user)
                .or_else(|| pod_security.and_then(|s| s.run_as_user));
            let run_as_group = security
                .and_then(|s| s.run_as_group)
                .or_else(|| pod_security.and_then(|s| s.run_as_group));
            assert_eq!(
                (run_as_user, run_as_group),
                (Some(uid), Some(gid)),
                "{} runs {} as a user that is not the image's",
                object.name(),
                container.name
            );
            assert_eq!(
                pod_security.and_then(|s| s.run_as_non_root),
                Some(true),
                "{}",
                object.name()
            );
        }
    }
    assert_eq!(
        seen, 3,
        "each of our images is in exactly one rendered container"
    );
    assert_eq!(
        built.values().next().copied(),
        Some((
            i64::from(vote_contract::deploy::NONROOT_UID),
            i64::from(vote_contract::deploy::NONROOT_GID)
        ))
    );
}
