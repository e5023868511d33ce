//! Pod security: who the pod runs as, with which seccomp profile, and what of the node it sees.

use crate::input::{Input, POD_SPEC};
use crate::report::Finding;

pub(crate) fn run_as_non_root(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        let pod_level = pod
            .spec
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_non_root);
        for ctr in pod.containers() {
            let own = ctr
                .container
                .security_context
                .as_ref()
                .and_then(|s| s.run_as_non_root);
            match (own, pod_level) {
                (Some(true), _) | (None, Some(true)) => {}
                (Some(false), _) => findings.push(Finding::on(
                    pod.object,
                    format!("{}.securityContext.runAsNonRoot", ctr.path),
                    "is false: the container may run as root",
                )),
                (None, _) => findings.push(Finding::on(
                    pod.object,
                    format!("{POD_SPEC}.securityContext.runAsNonRoot"),
                    match pod_level {
                        Some(false) => "is false: containers may run as root",
                        _ => "is not set: containers may run as root",
                    },
                )),
            }
        }
    }
    findings
}

pub(crate) fn image_user(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        let context = pod.spec.security_context.as_ref();
        let expected = pod.expected.map(|w| w.user);
        let fields = [
            (
                "runAsUser",
                context.and_then(|c| c.run_as_user),
                expected.map(|u| u.run_as_user),
            ),
            (
                "runAsGroup",
                context.and_then(|c| c.run_as_group),
                expected.map(|u| u.run_as_group),
            ),
            (
                "fsGroup",
                context.and_then(|c| c.fs_group),
                expected.map(|u| u.fs_group),
            ),
        ];
        for (field, got, want) in fields {
            let path = format!("{POD_SPEC}.securityContext.{field}");
            let problem = match (got, want) {
                (None, Some(want)) => Some(format!("is not set; the image's user is {want}")),
                (None, None) => Some("is not set".to_owned()),
                (Some(0), _) => Some("is 0: root".to_owned()),
                (Some(got), Some(want)) if got != want => Some(format!(
                    "is {got}, but the image {} runs as {want}: the pod would crash-loop",
                    pod.expected.map(|w| w.image.as_str()).unwrap_or_default()
                )),
                _ => None,
            };
            if let Some(problem) = problem {
                findings.push(Finding::on(pod.object, path, problem));
            }
        }
        // A container may override the pod's user: it must not move away from the image's.
        for ctr in pod.containers() {
            let Some(sc) = ctr.container.security_context.as_ref() else {
                continue;
            };
            for (field, got, want) in [
                ("runAsUser", sc.run_as_user, expected.map(|u| u.run_as_user)),
                (
                    "runAsGroup",
                    sc.run_as_group,
                    expected.map(|u| u.run_as_group),
                ),
            ] {
                let Some(got) = got else { continue };
                let problem = if got == 0 {
                    "is 0: root".to_owned()
                } else if let Some(want) = want.filter(|w| *w != got) {
                    format!("is {got}, but the image runs as {want}")
                } else {
                    continue;
                };
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.securityContext.{field}", ctr.path),
                    problem,
                ));
            }
        }
    }
    findings
}

pub(crate) fn seccomp(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        let pod_level = pod
            .spec
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
            .map(|p| p.type_.as_str());
        if let Some(other) = pod_level.filter(|t| *t != "RuntimeDefault" && *t != "Localhost") {
            findings.push(Finding::on(
                pod.object,
                format!("{POD_SPEC}.securityContext.seccompProfile.type"),
                format!("is {other}, not RuntimeDefault"),
            ));
            continue;
        }
        for ctr in pod.containers() {
            let own = ctr
                .container
                .security_context
                .as_ref()
                .and_then(|s| s.seccomp_profile.as_ref())
                .map(|p| p.type_.as_str());
            match own.or(pod_level) {
                Some("RuntimeDefault" | "Localhost") => {}
                Some(other) => findings.push(Finding::on(
                    pod.object,
                    format!("{}.securityContext.seccompProfile.type", ctr.path),
                    format!("is {other}, not RuntimeDefault"),
                )),
                None => findings.push(Finding::on(
                    pod.object,
                    format!("{POD_SPEC}.securityContext.seccompProfile"),
                    "is not set: containers run without a seccomp profile",
                )),
            }
        }
    }
    findings
}

pub(crate) fn host_namespaces(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for (field, value) in [
            ("hostNetwork", pod.spec.host_network),
            ("hostPID", pod.spec.host_pid),
            ("hostIPC", pod.spec.host_ipc),
        ] {
            if value == Some(true) {
                findings.push(Finding::on(
                    pod.object,
                    format!("{POD_SPEC}.{field}"),
                    "is true: the pod shares the node's namespace",
                ));
            }
        }
        for ctr in pod.containers() {
            for (i, port) in ctr.container.ports.iter().flatten().enumerate() {
                if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
                    findings.push(Finding::on(
                        pod.object,
                        format!("{}.ports[{i}].hostPort", ctr.path),
                        format!("is {host_port}: the container listens on the node's address"),
                    ));
                }
            }
        }
    }
    findings
}

pub(crate) fn host_path(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for volume in pod.spec.volumes.iter().flatten() {
            if let Some(host) = &volume.host_path {
                findings.push(Finding::on(
                    pod.object,
                    format!("{POD_SPEC}.volumes[name={}].hostPath", volume.name),
                    format!("mounts the node's {}", host.path),
                ));
            }
        }
    }
    findings
}
