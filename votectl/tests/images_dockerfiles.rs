//! The Dockerfiles (for users with a Docker engine; none runs here, so they are parsed, not built):
//! one per image, multi-stage, `cargo build --locked --release`, base images only by digest, a final
//! stage with no shell that runs as the contract's nonroot UID and exposes the contract's port.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use vote_contract::deploy::{NONROOT_GID, NONROOT_UID};
use votectl::images::{self, Service};

fn docker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("docker")
}

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// Dockerfile syntax: `#` lines are comments (also inside a continued instruction), a trailing `\`
/// continues the instruction on the next line.
fn parse(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, args) = current.split_once(' ').unwrap_or((&current, ""));
        out.push(Instruction {
            keyword: keyword.to_uppercase(),
            args: args.trim().to_owned(),
        });
        current.clear();
    }
    assert!(current.is_empty(), "a continued instruction never ends");
    out
}

fn is_digest_pinned(reference: &str) -> bool {
    reference
        .rsplit_once("@sha256:")
        .is_some_and(|(name, hex)| {
            !name.is_empty()
                && hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn check(service: Service) {
    let path = docker_dir().join(format!("{}.Dockerfile", service.name));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let instructions = parse(&text);
    let at = |what: &str| format!("{}: {what}", path.display());

    // Stages.
    let froms: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(froms.len() >= 2, "{}", at("multi-stage build expected"));
    let global_args: Vec<&str> = instructions[..froms[0]]
        .iter()
        .filter(|i| i.keyword == "ARG")
        .map(|i| i.args.as_str())
        .collect();
    let build_stage = &instructions[froms[0]..froms[froms.len() - 1]];
    let final_stage = &instructions[froms[froms.len() - 1]..];

    // Every base image is pinned by digest: literally, or through a build argument with no default
    // that the build stage refuses unless it is `…@sha256:<64 hex>`.
    let digest_guard = build_stage
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("@sha256:[0-9a-f]{64}$"))
        .map(|i| i.args.clone());
    for &n in &froms {
        let image = instructions[n].args.split_whitespace().next().unwrap();
        if is_digest_pinned(image) {
            continue;
        }
        let arg = image
            .strip_prefix("${")
            .and_then(|a| a.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{}", at(&format!("FROM {image} is not pinned by digest"))));
        assert!(
            global_args.contains(&arg),
            "{}",
            at(&format!("{arg} must be a global ARG with no default"))
        );
        let guard = digest_guard
            .as_deref()
            .unwrap_or_else(|| panic!("{}", at("no RUN refuses an unpinned base image")));
        assert!(
            guard.contains(&format!("${{{arg}}}")),
            "{}",
            at(&format!("the digest check does not cover {arg}"))
        );
    }

    // The build: locked release build of exactly this binary.
    let build = build_stage
        .iter()
        .filter(|i| i.keyword == "RUN")
        .find(|i| i.args.contains("cargo build"))
        .unwrap_or_else(|| panic!("{}", at("no cargo build")));
    for part in [
        "cargo build --locked --release".to_owned(),
        format!("-p {} --bin {}", service.package, service.bin),
    ] {
        assert!(
            build.args.contains(&part),
            "{}",
            at(&format!("missing `{part}`"))
        );
    }

    // The final stage: no shell to run anything, the binary, the nonroot user, the port.
    for instruction in final_stage {
        assert!(
            !matches!(instruction.keyword.as_str(), "RUN" | "SHELL" | "ADD"),
            "{}",
            at(&format!("{} in the final stage", instruction.keyword))
        );
        if instruction.keyword == "COPY" {
            assert!(
                instruction.args.starts_with("--from="),
                "{}",
                at("the final stage copies only from the build stage")
            );
        }
    }
    let last = |keyword: &str| {
        final_stage
            .iter()
            .rev()
            .find(|i| i.keyword == keyword)
            .map(|i| i.args.clone())
    };
    assert_eq!(
        last("USER").as_deref(),
        Some(format!("{NONROOT_UID}:{NONROOT_GID}").as_str()),
        "{}",
        at("USER")
    );
    assert_eq!(
        last("ENTRYPOINT"),
        Some(format!(r#"["{}/{}"]"#, images::BIN_DIR, service.bin)),
        "{}",
        at("ENTRYPOINT must be the exec form (there is no shell)")
    );
    assert_eq!(
        last("EXPOSE"),
        service.port.map(|p| p.to_string()),
        "{}",
        at("EXPOSE")
    );
    let copy = last("COPY").unwrap_or_default();
    assert!(
        copy.ends_with(&format!(" {}/{}", images::BIN_DIR, service.bin)),
        "{}",
        at(&format!(
            "the binary goes to {}/{}",
            images::BIN_DIR,
            service.bin
        ))
    );

    // The comment the manifests' authors read.
    assert!(
        text.contains(&format!("runAsUser: {NONROOT_UID}"))
            && text.contains(&format!("runAsGroup: {NONROOT_GID}")),
        "{}",
        at("a comment must name the UID/GID the manifests use")
    );

    // BuildKit's per-Dockerfile ignore file keeps target/ out of the context.
    let ignore = std::fs::read_to_string(
        docker_dir().join(format!("{}.Dockerfile.dockerignore", service.name)),
    )
    .unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target"), "{ignore}");
}

#[test]
fn every_image_has_a_dockerfile_that_runs_as_the_contract_user() {
    for service in images::SERVICES {
        check(service);
    }
}

#[test]
fn the_parser_sees_what_docker_sees() {
    let text = "# c\nARG A\nFROM ${A} AS b\nRUN one \\\n# inner comment\n  two\nUSER 1:1\n";
    let parsed = parse(text);
    let keywords: Vec<_> = parsed.iter().map(|i| i.keyword.as_str()).collect();
    assert_eq!(keywords, ["ARG", "FROM", "RUN", "USER"]);
    assert_eq!(parsed[2].args, "one  two");
    assert!(is_digest_pinned(&format!(
        "gcr.io/distroless/static@sha256:{}",
        "a".repeat(64)
    )));
    assert!(!is_digest_pinned("gcr.io/distroless/static:nonroot"));
    assert!(!is_digest_pinned(&format!("x@sha256:{}", "A".repeat(64))));
}

#[test]
fn the_build_script_is_valid_and_uses_the_documented_base_images() {
    let script_path = docker_dir().join("build-images.sh");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&script_path)
        .status()
        .unwrap();
    assert!(status.success(), "bash -n {}", script_path.display());
    let script = std::fs::read_to_string(&script_path).unwrap();
    for service in images::SERVICES {
        let dockerfile =
            std::fs::read_to_string(docker_dir().join(format!("{}.Dockerfile", service.name)))
                .unwrap();
        for (arg, var) in [
            ("BUILDER_IMAGE", "BUILDER_TAG"),
            ("RUNTIME_IMAGE", "RUNTIME_TAG"),
        ] {
            // `#   BUILDER_IMAGE  docker.io/library/rust:…` in the Dockerfile header …
            let documented = dockerfile
                .lines()
                .find_map(|l| {
                    l.trim_start_matches('#')
                        .trim()
                        .strip_prefix(arg)
                        .map(str::trim)
                        .filter(|t| !t.is_empty() && !t.starts_with('='))
                })
                .unwrap_or_else(|| panic!("{}: {arg} tag not documented", service.name));
            // … is what the script resolves to a digest by default.
            assert!(
                script.contains(&format!("{var}=${{{var}:-{documented}}}")),
                "{}: script default for {var} is not {documented}",
                service.name
            );
        }
    }
    // The image user the script promises is the contract's.
    assert!(script.contains(&format!("{NONROOT_UID}:{NONROOT_GID}")));
    // Without Docker it says so in one line and exits 2.
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .arg(&script_path)
        .env("PATH", format!("{}:/usr/bin:/bin", empty.path().display()))
        .env("DOCKER", "docker-that-is-not-installed")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("votectl images build"));
}
