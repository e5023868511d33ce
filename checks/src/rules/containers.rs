//! Containers: what each process may do inside its pod.

use std::collections::BTreeSet;

use votectl_manifests::Object;

use crate::input::Input;
use crate::report::Finding;

pub(crate) fn read_only_root(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for ctr in pod.containers() {
            let value = ctr
                .container
                .security_context
                .as_ref()
                .and_then(|s| s.read_only_root_filesystem);
            if value != Some(true) {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.securityContext.readOnlyRootFilesystem", ctr.path),
                    match value {
                        Some(_) => "is false: the image's file system is writable",
                        None => "is not set: the image's file system is writable",
                    },
                ));
            }
        }
    }
    findings
}

pub(crate) fn no_privilege_escalation(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for ctr in pod.containers() {
            let value = ctr
                .container
                .security_context
                .as_ref()
                .and_then(|s| s.allow_privilege_escalation);
            if value != Some(false) {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.securityContext.allowPrivilegeEscalation", ctr.path),
                    match value {
                        Some(_) => "is true: setuid binaries can gain privileges",
                        None => {
                            "is not set (defaults to true): setuid binaries can gain privileges"
                        }
                    },
                ));
            }
        }
    }
    findings
}

pub(crate) fn capabilities(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for ctr in pod.containers() {
            let caps = ctr
                .container
                .security_context
                .as_ref()
                .and_then(|s| s.capabilities.as_ref());
            let drops_all = caps
                .and_then(|c| c.drop.as_ref())
                .is_some_and(|d| d.iter().any(|c| c.eq_ignore_ascii_case("ALL")));
            if !drops_all {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.securityContext.capabilities.drop", ctr.path),
                    "does not drop ALL: the runtime's default capabilities remain",
                ));
            }
            if let Some(add) = caps.and_then(|c| c.add.as_ref()).filter(|a| !a.is_empty()) {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.securityContext.capabilities.add", ctr.path),
                    format!("adds {}", add.join(", ")),
                ));
            }
        }
    }
    findings
}

pub(crate) fn not_privileged(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for ctr in pod.containers() {
            if ctr
                .container
                .security_context
                .as_ref()
                .and_then(|s| s.privileged)
                == Some(true)
            {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.securityContext.privileged", ctr.path),
                    "is true: the container is root on the node",
                ));
            }
        }
    }
    findings
}

pub(crate) fn writable_mounts(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        let claims: BTreeSet<&str> = match pod.object {
            Object::StatefulSet(s) => s
                .spec
                .iter()
                .flat_map(|s| s.volume_claim_templates.iter().flatten())
                .filter_map(|c| c.metadata.name.as_deref())
                .collect(),
            _ => BTreeSet::new(),
        };
        let volumes = pod.spec.volumes.as_deref().unwrap_or_default();
        for ctr in pod.containers() {
            for mount in ctr.container.volume_mounts.iter().flatten() {
                if mount.read_only == Some(true) {
                    continue;
                }
                let volume = volumes.iter().find(|v| v.name == mount.name);
                let fine = claims.contains(mount.name.as_str())
                    || volume.is_some_and(|v| {
                        v.empty_dir.is_some()
                            || v.persistent_volume_claim.is_some()
                            || v.ephemeral.is_some()
                    });
                if !fine {
                    findings.push(Finding::on(
                        pod.object,
                        format!("{}.volumeMounts[name={}].readOnly", ctr.path, mount.name),
                        format!(
                            "{} is writable, but its volume is neither an emptyDir nor a claim",
                            mount.mount_path
                        ),
                    ));
                }
            }
        }
    }
    findings
}
