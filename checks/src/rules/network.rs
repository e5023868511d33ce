//! Network policies: a default-deny everywhere, and exactly the intended flows allowed.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use votectl_manifests::Object;

use crate::input::Input;
use crate::reach::{self, Endpoint, Side, policy_types};
use crate::report::Finding;

pub(crate) fn default_deny(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for namespace in input.namespaces() {
        // Policies of the namespace that select all its pods.
        let everyone: Vec<(&Object, &NetworkPolicy)> = input
            .objects
            .iter()
            .filter_map(|o| match o {
                Object::NetworkPolicy(p) if o.namespace() == Some(namespace) => Some((o, p)),
                _ => None,
            })
            .filter(|(_, p)| {
                p.spec.as_ref().is_some_and(|s| {
                    s.pod_selector.as_ref().is_none_or(|sel| {
                        sel.match_labels.as_ref().is_none_or(|l| l.is_empty())
                            && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty())
                    })
                })
            })
            .collect();
        for (direction, field) in [("Ingress", "spec.ingress"), ("Egress", "spec.egress")] {
            let denies = everyone.iter().any(|(_, p)| {
                let Some(spec) = p.spec.as_ref() else {
                    return false;
                };
                let (ingress, egress) = policy_types(spec);
                match direction {
                    "Ingress" => ingress && spec.ingress.as_ref().is_none_or(|r| r.is_empty()),
                    _ => egress && spec.egress.as_ref().is_none_or(|r| r.is_empty()),
                }
            });
            if denies {
                continue;
            }
            let lower = direction.to_lowercase();
            findings.push(match everyone.first() {
                Some((object, _)) => Finding::on(
                    object,
                    format!("spec.policyTypes, {field}"),
                    format!(
                        "selects every pod of {namespace} but does not deny all {lower}: it needs \
                         `{direction}` in policyTypes and no {lower} rules"
                    ),
                ),
                None => Finding::new(
                    "Namespace",
                    None,
                    namespace,
                    "(NetworkPolicy)",
                    format!(
                        "no NetworkPolicy with `podSelector: {{}}` denies all {lower} in {namespace}"
                    ),
                ),
            });
        }
    }
    findings
}

fn side_text(side: &Side, subject: &Endpoint) -> String {
    match side {
        Side::NotIsolated if *subject == Endpoint::External => {
            "unrestricted (outside the cluster)".to_owned()
        }
        Side::NotIsolated => "not isolated (no policy selects the pod)".to_owned(),
        Side::Allowed { by } => format!(
            "allowed by {}",
            by.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Side::Denied { isolated_by } => format!(
            "denied (isolated by {}, no rule admits it)",
            isolated_by
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(crate) fn reachability(input: &Input<'_>) -> Vec<Finding> {
    let expected = input.expected;
    let evaluation = reach::evaluate(input.objects, &expected.flows, &expected.namespaces);
    let workload_object = |endpoint: &Endpoint| match endpoint {
        Endpoint::Workload {
            namespace,
            component,
        } => input.objects.iter().find(|o| {
            o.pod_template().is_some()
                && o.namespace() == Some(namespace.as_str())
                && o.name() == component.name()
        }),
        _ => None,
    };
    // One finding per pair of ends, object to blame and reasons, listing the ports.
    let mut grouped: BTreeMap<(Finding, String, String), Vec<String>> = BTreeMap::new();
    for d in &evaluation.discrepancies {
        let probe = &d.probe;
        let (blame, field) = if d.allowed {
            match (&d.verdict.ingress, &d.verdict.egress) {
                (Side::Allowed { by }, _) => (Some(by[0].clone()), "spec.ingress"),
                (_, Side::Allowed { by }) => (Some(by[0].clone()), "spec.egress"),
                _ => (None, "spec.template.metadata.labels"),
            }
        } else {
            match (&d.verdict.egress, &d.verdict.ingress) {
                (Side::Denied { isolated_by }, _) => (Some(isolated_by[0].clone()), "spec.egress"),
                (_, Side::Denied { isolated_by }) => (Some(isolated_by[0].clone()), "spec.ingress"),
                _ => (None, "spec.template.metadata.labels"),
            }
        };
        let base = match blame {
            Some(policy) => Finding::new(
                "NetworkPolicy",
                Some(&policy.namespace),
                policy.name,
                field,
                String::new(),
            ),
            None => match workload_object(&probe.to).or_else(|| workload_object(&probe.from)) {
                Some(object) => Finding::on(object, field, String::new()),
                None => Finding::new("Namespace", None, "", field, String::new()),
            },
        };
        let reasons = format!(
            "egress {}; ingress {}",
            side_text(&d.verdict.egress, &probe.from),
            side_text(&d.verdict.ingress, &probe.to)
        );
        let what = if d.allowed {
            "allowed but not intended"
        } else {
            "intended but blocked"
        };
        grouped
            .entry((
                base,
                format!("{} -> {} is {what}", probe.from, probe.to),
                reasons,
            ))
            .or_default()
            .push(format!("{}/{}", probe.port, probe.protocol.as_str()));
    }
    grouped
        .into_iter()
        .map(|((mut finding, head, reasons), ports)| {
            finding.message = format!("{head} on {}: {reasons}", ports.join(", "));
            finding
        })
        .collect()
}
