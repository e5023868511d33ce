//! What the checks look at: a set of objects, and what the values say they should be.
//!
//! The objects may come from [`votectl_manifests::render`] or, converted to the same types, from a
//! cluster; the [`Expectations`] always come from the values, so a cluster that drifted from them
//! (another image, another user) fails the checks.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde::Serialize;
use vote_contract::deploy;
use votectl_manifests::values::{Image, ImageUser};
use votectl_manifests::{Component, Flow, Namespaces, Object, Profile, Values, intended_flows};

/// The user a pod must run as: the image's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub run_as_user: i64,
    pub run_as_group: i64,
    pub fs_group: i64,
}

impl From<ImageUser> for User {
    fn from(u: ImageUser) -> Self {
        Self {
            run_as_user: u.run_as_user.into(),
            run_as_group: u.run_as_group.into(),
            fs_group: u.fs_group.into(),
        }
    }
}

/// One workload of the application as the values describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub component: Component,
    pub namespace: String,
    /// The image reference every container of the workload runs.
    pub image: String,
    pub pull_policy: String,
    pub user: User,
}

/// What the objects should be, from the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expectations {
    pub namespaces: Namespaces,
    /// The only connections the NetworkPolicies may allow.
    pub flows: Vec<Flow>,
    /// One per [`Component`], in [`Component::ALL`] order.
    pub workloads: Vec<Workload>,
    /// A local cluster (minikube, kind): images are loaded into it, never pulled.
    pub local_cluster: bool,
}

impl Expectations {
    /// From the values the objects were (or should have been) rendered from. The minikube and kind
    /// profiles are local clusters.
    pub fn new(values: &Values, profile: Profile) -> Self {
        let namespaces = Namespaces::of(values);
        let ours = User {
            run_as_user: deploy::NONROOT_UID.into(),
            run_as_group: deploy::NONROOT_GID.into(),
            fs_group: deploy::NONROOT_GID.into(),
        };
        let workload = |component: Component, image: &Image, user: User| Workload {
            component,
            namespace: component.namespace(&namespaces).to_owned(),
            image: image.reference(),
            pull_policy: image.pull_policy.as_str().to_owned(),
            user,
        };
        let images = &values.images;
        let workloads = vec![
            workload(Component::Frontend, &images.frontend, ours),
            workload(Component::Api, &images.api, ours),
            workload(Component::Consumer, &images.consumer, ours),
            workload(
                Component::Redis,
                &images.redis,
                values.redis.security_context.into(),
            ),
            workload(
                Component::Postgres,
                &images.postgres,
                values.postgresql.security_context.into(),
            ),
        ];
        Self {
            flows: intended_flows(values),
            namespaces,
            workloads,
            local_cluster: matches!(profile, Profile::Minikube | Profile::Kind),
        }
    }

    /// The workload that `namespace`/`name` should be, if it is one of the application's.
    pub fn workload(&self, namespace: Option<&str>, name: &str) -> Option<&Workload> {
        self.workloads
            .iter()
            .find(|w| Some(w.namespace.as_str()) == namespace && w.component.name() == name)
    }
}

/// The objects to check and what they should be.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub objects: &'a [Object],
    pub expected: &'a Expectations,
}

/// A workload's pod template, found among the objects.
pub(crate) struct Pod<'a> {
    pub object: &'a Object,
    pub spec: &'a PodSpec,
    pub labels: BTreeMap<String, String>,
    /// What the values say it should be, when it is one of the application's workloads.
    pub expected: Option<&'a Workload>,
}

/// A container of a pod, with the path to it.
pub(crate) struct Ctr<'a> {
    pub container: &'a Container,
    /// `spec.template.spec.containers[name=api]`.
    pub path: String,
    pub init: bool,
}

/// The path of a workload's pod spec.
pub(crate) const POD_SPEC: &str = "spec.template.spec";

impl<'a> Input<'a> {
    pub(crate) fn pods(&self) -> impl Iterator<Item = Pod<'a>> + use<'a> {
        let expected = self.expected;
        self.objects.iter().filter_map(move |object| {
            let template = object.pod_template()?;
            Some(Pod {
                object,
                spec: template.spec.as_ref()?,
                labels: template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default(),
                expected: expected.workload(object.namespace(), object.name()),
            })
        })
    }

    pub(crate) fn namespaces(&self) -> [&'a str; 4] {
        self.expected.namespaces.all()
    }
}

impl<'a> Pod<'a> {
    /// Init containers first, as they run.
    pub(crate) fn containers(&self) -> impl Iterator<Item = Ctr<'a>> + use<'a> {
        let init = self.spec.init_containers.iter().flatten().map(|c| Ctr {
            container: c,
            path: format!("{POD_SPEC}.initContainers[name={}]", c.name),
            init: true,
        });
        let main = self.spec.containers.iter().map(|c| Ctr {
            container: c,
            path: format!("{POD_SPEC}.containers[name={}]", c.name),
            init: false,
        });
        init.chain(main)
    }
}
