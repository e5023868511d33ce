//! Namespaces: Pod Security Admission on each, every component in its own.

use votectl_manifests::Object;

use crate::input::Input;
use crate::report::Finding;

/// The Pod Security Admission modes, each of which must be `restricted`.
const MODES: [&str; 3] = ["enforce", "audit", "warn"];

pub(crate) fn pod_security_admission(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for namespace in input.namespaces() {
        let object = input
            .objects
            .iter()
            .find(|o| matches!(o, Object::Namespace(_)) && o.name() == namespace);
        let Some(object) = object else {
            findings.push(Finding::new(
                "Namespace",
                None,
                namespace,
                "metadata",
                "is not among the objects: nothing enforces Pod Security in it",
            ));
            continue;
        };
        let labels = object.metadata().labels.clone().unwrap_or_default();
        for mode in MODES {
            let key = format!("pod-security.kubernetes.io/{mode}");
            match labels.get(&key).map(String::as_str) {
                Some("restricted") => {}
                other => findings.push(Finding::on(
                    object,
                    format!("metadata.labels[{key}]"),
                    match other {
                        Some(level) => format!("is {level}, not restricted"),
                        None => "is not set (should be restricted)".to_owned(),
                    },
                )),
            }
        }
    }
    findings
}

pub(crate) fn placement(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let ours = input.namespaces();
    for object in input.objects {
        if let Some(namespace) = object.namespace()
            && !ours.contains(&namespace)
        {
            findings.push(Finding::on(
                object,
                "metadata.namespace",
                format!("is {namespace}, not one of the application's namespaces"),
            ));
        }
    }
    for workload in &input.expected.workloads {
        let name = workload.component.name();
        let found: Vec<&Object> = input
            .objects
            .iter()
            .filter(|o| o.pod_template().is_some() && o.name() == name)
            .collect();
        if !found
            .iter()
            .any(|o| o.namespace() == Some(workload.namespace.as_str()))
        {
            findings.push(match found.first() {
                Some(object) => Finding::on(
                    object,
                    "metadata.namespace",
                    format!("should be {}", workload.namespace),
                ),
                None => Finding::new(
                    "Workload",
                    Some(&workload.namespace),
                    name,
                    "metadata.name",
                    format!("{name} is missing from {}", workload.namespace),
                ),
            });
        }
    }
    findings
}
