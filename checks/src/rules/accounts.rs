//! Service accounts: no API token in the pods, one account per workload.

use votectl_manifests::Object;

use crate::input::{Input, POD_SPEC};
use crate::report::Finding;

pub(crate) fn no_token(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        let value = pod.spec.automount_service_account_token;
        if value != Some(false) {
            findings.push(Finding::on(
                pod.object,
                format!("{POD_SPEC}.automountServiceAccountToken"),
                match value {
                    Some(_) => "is true: the pod gets an API token",
                    None => {
                        "is not set: the pod gets an API token unless its account says otherwise"
                    }
                },
            ));
        }
    }
    for object in input.objects {
        if let Object::ServiceAccount(sa) = object
            && sa.automount_service_account_token != Some(false)
        {
            findings.push(Finding::on(
                object,
                "automountServiceAccountToken",
                "is not false: pods of this account get an API token by default",
            ));
        }
    }
    findings
}

pub(crate) fn own_account(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let path = format!("{POD_SPEC}.serviceAccountName");
    let account = |spec: &k8s_openapi::api::core::v1::PodSpec| {
        spec.service_account_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned())
    };
    let pods: Vec<_> = input.pods().collect();
    for pod in &pods {
        let name = account(pod.spec);
        if name == "default" {
            findings.push(Finding::on(
                pod.object,
                path.clone(),
                "is the namespace's `default` account, shared by every pod there",
            ));
            continue;
        }
        let exists = input.objects.iter().any(|o| {
            matches!(o, Object::ServiceAccount(_))
                && o.namespace() == pod.object.namespace()
                && o.name() == name
        });
        if !exists {
            findings.push(Finding::on(
                pod.object,
                path.clone(),
                format!("names {name}, which is not among the objects"),
            ));
        }
        let sharing: Vec<&str> = pods
            .iter()
            .filter(|other| {
                !std::ptr::eq(other.object, pod.object)
                    && other.object.namespace() == pod.object.namespace()
                    && account(other.spec) == name
            })
            .map(|other| other.object.name())
            .collect();
        if !sharing.is_empty() {
            findings.push(Finding::on(
                pod.object,
                path.clone(),
                format!("{name} is also the account of {}", sharing.join(", ")),
            ));
        }
    }
    findings
}
