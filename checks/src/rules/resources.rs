//! Resources and probes: bounded, observable workloads.

use votectl_manifests::Object;

use crate::input::Input;
use crate::reach::selects;
use crate::report::Finding;

pub(crate) fn requests_and_limits(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for ctr in pod.containers() {
            let resources = ctr.container.resources.as_ref();
            for (list_name, list) in [
                ("requests", resources.and_then(|r| r.requests.as_ref())),
                ("limits", resources.and_then(|r| r.limits.as_ref())),
            ] {
                for resource in ["cpu", "memory"] {
                    if !list.is_some_and(|l| l.contains_key(resource)) {
                        findings.push(Finding::on(
                            pod.object,
                            format!("{}.resources.{list_name}.{resource}", ctr.path),
                            "is not set",
                        ));
                    }
                }
            }
        }
    }
    findings
}

pub(crate) fn probes(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        // Init containers run to completion: the kubelet does not probe them.
        for ctr in pod.containers().filter(|c| !c.init) {
            let c = ctr.container;
            for (field, probe) in [
                ("startupProbe", &c.startup_probe),
                ("livenessProbe", &c.liveness_probe),
                ("readinessProbe", &c.readiness_probe),
            ] {
                if probe.is_none() {
                    findings.push(Finding::on(
                        pod.object,
                        format!("{}.{field}", ctr.path),
                        "is missing",
                    ));
                }
            }
        }
    }
    findings
}

pub(crate) fn disruption_budget(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        let covered = input.objects.iter().any(|o| match o {
            Object::PodDisruptionBudget(pdb) => {
                o.namespace() == pod.object.namespace()
                    && pdb
                        .spec
                        .as_ref()
                        .and_then(|s| s.selector.as_ref())
                        // An empty selector in a policy/v1 budget selects every pod of the namespace.
                        .is_some_and(|s| selects(s, &pod.labels))
            }
            _ => false,
        });
        if !covered {
            findings.push(Finding::on(
                pod.object,
                "spec.template.metadata.labels",
                "no PodDisruptionBudget selects these pods",
            ));
        }
    }
    findings
}
