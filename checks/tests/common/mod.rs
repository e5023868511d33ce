//! Helpers shared by the checks' integration tests: load and render values, run the catalogue,
//! reach into rendered objects to break them.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use votectl_checks::{Expectations, Input, Report, run};
use votectl_manifests::{Layers, Object, Password, Profile, Secrets, ValuesFile};

/// A password that cannot occur in a manifest by chance.
pub const PASSWORD: &str = "Zq7-unlikely-Pw_93x";

/// Rendered objects and what the values say they should be.
pub struct Case {
    pub objects: Vec<Object>,
    pub expected: Expectations,
}

impl Case {
    pub fn new(profile: Profile, files: &[(&str, &str)], sets: &[&str]) -> Self {
        let loaded = Layers {
            profile,
            files: files.iter().map(|(n, t)| ValuesFile::new(*n, *t)).collect(),
            sets: sets.iter().map(|s| (*s).to_owned()).collect(),
            ..Layers::default()
        }
        .load()
        .unwrap_or_else(|e| panic!("values do not load: {e}"));
        let secrets = Secrets {
            postgres_password: Some(
                loaded
                    .postgres_password
                    .clone()
                    .unwrap_or_else(|| Password::new(PASSWORD).unwrap()),
            ),
        };
        let rendered = votectl_manifests::render(&loaded.values, &secrets).unwrap();
        Self {
            objects: rendered.objects,
            expected: Expectations::new(&loaded.values, profile),
        }
    }

    pub fn profile(profile: Profile) -> Self {
        Self::new(profile, &[], &[])
    }

    pub fn report(&self) -> Report {
        run(&Input {
            objects: &self.objects,
            expected: &self.expected,
        })
    }

    /// The ids of the checks that fail.
    pub fn failing(&self) -> BTreeSet<&'static str> {
        self.report().failed().map(|r| r.check.id).collect()
    }

    pub fn object_mut(&mut self, kind: &str, namespace: Option<&str>, name: &str) -> &mut Object {
        self.objects
            .iter_mut()
            .find(|o| o.kind() == kind && o.name() == name && o.namespace() == namespace)
            .unwrap_or_else(|| panic!("no {kind} {namespace:?}/{name}"))
    }

    /// The pod spec of the workload (Deployment or StatefulSet) called `name`.
    pub fn pod_mut(&mut self, name: &str) -> &mut PodSpec {
        let object = self
            .objects
            .iter_mut()
            .find(|o| o.pod_template().is_some() && o.name() == name)
            .unwrap_or_else(|| panic!("no workload {name}"));
        let template = match object {
            Object::Deployment(d) => &mut d.spec.as_mut().unwrap().template,
            Object::StatefulSet(s) => &mut s.spec.as_mut().unwrap().template,
            _ => unreachable!(),
        };
        template.spec.as_mut().unwrap()
    }

    /// The (only) container of the workload called `name`.
    pub fn container_mut(&mut self, name: &str) -> &mut Container {
        &mut self.pod_mut(name).containers[0]
    }

    pub fn remove(&mut self, kind: &str, namespace: Option<&str>, name: &str) {
        let before = self.objects.len();
        self.objects
            .retain(|o| !(o.kind() == kind && o.name() == name && o.namespace() == namespace));
        assert_eq!(
            self.objects.len(),
            before - 1,
            "no {kind} {namespace:?}/{name}"
        );
    }
}

/// Asserts that exactly the checks `ids` fail, and that `id`'s findings include one on the given
/// object and field; returns that finding's message.
#[track_caller]
pub fn assert_fails(
    case: &Case,
    ids: &[&str],
    id: &str,
    (kind, namespace, name): (&str, Option<&str>, &str),
    field: &str,
) -> String {
    let report = case.report();
    let failing: BTreeSet<&str> = report.failed().map(|r| r.check.id).collect();
    let want: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(failing, want, "failing checks");
    let result = report.result(id).unwrap();
    let finding = result
        .findings
        .iter()
        .find(|f| {
            f.kind == kind
                && f.namespace.as_deref() == namespace
                && f.name == name
                && f.field == field
        })
        .unwrap_or_else(|| {
            panic!(
                "{id}: no finding on {kind} {namespace:?}/{name} {field}; findings: {:#?}",
                result.findings
            )
        });
    finding.message.clone()
}
