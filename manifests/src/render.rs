//! Values → typed Kubernetes objects (k8s-openapi, never text templates).
//!
//! Invariants, each tested:
//! - every image reference, pull policy and size comes from [`Values`]; nothing here names an image;
//! - our pods run as [`deploy::NONROOT_UID`]/[`deploy::NONROOT_GID`] (the images' user), redis and
//!   postgres as the values' image users; every pod is `runAsNonRoot` with `seccompProfile:
//!   RuntimeDefault`; every container has a read-only root filesystem, no privilege escalation and
//!   no capabilities, with an emptyDir wherever it must write;
//! - the PostgreSQL password is only ever in a Secret's data: pods read it from a mounted file
//!   (`DATABASE_PASSWORD_FILE`, `POSTGRES_PASSWORD_FILE`) and `DATABASE_URL` holds none;
//! - the output order is stable: namespaces first, then by kind (Helm's install order), namespace
//!   and name.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    HTTPGetAction, KeyToPath, Lifecycle, LifecycleHandler, Namespace, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SeccompProfile, Secret, SecretVolumeSource, SecurityContext,
    Service, ServiceAccount, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use vote_contract::deploy;
use vote_contract::http::path;
use vote_contract::settings::var;

use crate::error::{Error, Origin, Result};
use crate::flows::{
    Component, Flow, Namespaces, intended_flows, network_policy, network_policy_specs,
    selector_labels,
};
use crate::values::{Image, ImageUser, Password, Persistence, Resources, Values};

/// Where the PostgreSQL password file is mounted in every pod that needs it.
pub const PASSWORD_DIR: &str = "/run/secrets/postgres";
/// The key of the password in its Secret, and the file name under [`PASSWORD_DIR`].
pub const PASSWORD_KEY: &str = "password";
/// PostgreSQL's data directory: a subdirectory of the volume, whose root may hold `lost+found`,
/// which initdb refuses.
const PGDATA: &str = "/var/lib/postgresql/data/pgdata";
/// The `app.kubernetes.io/part-of` label of everything.
pub const PART_OF: &str = "voting-app";
/// The `app.kubernetes.io/managed-by` label of everything.
pub const MANAGED_BY: &str = "votectl";

/// Inputs that are not values: they must never be in a values file.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// When given, the Secret holding it is rendered (in each namespace that mounts it); when not, the
    /// pods refer to a Secret named `postgresql.passwordSecret` that must already exist.
    pub postgres_password: Option<Password>,
}

/// One rendered object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    Namespace(Namespace),
    NetworkPolicy(NetworkPolicy),
    PodDisruptionBudget(PodDisruptionBudget),
    ServiceAccount(ServiceAccount),
    Secret(Secret),
    Service(Service),
    Deployment(Deployment),
    StatefulSet(StatefulSet),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::Secret(_) => "Secret",
            Object::Service(_) => "Service",
            Object::Deployment(_) => "Deployment",
            Object::StatefulSet(_) => "StatefulSet",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
            Object::PodDisruptionBudget(o) => &o.metadata,
            Object::ServiceAccount(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// The pod template, for the workloads.
    pub fn pod_template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Object::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Object::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            _ => None,
        }
    }

    /// Position of the kind in the output: Helm's install order.
    fn kind_rank(&self) -> u8 {
        match self {
            Object::Namespace(_) => 0,
            Object::NetworkPolicy(_) => 1,
            Object::PodDisruptionBudget(_) => 2,
            Object::ServiceAccount(_) => 3,
            Object::Secret(_) => 4,
            Object::Service(_) => 5,
            Object::Deployment(_) => 6,
            Object::StatefulSet(_) => 7,
        }
    }
}

/// What [`render`] produces.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// In apply order.
    pub objects: Vec<Object>,
    /// The flows the NetworkPolicies allow (see [`intended_flows`]).
    pub flows: Vec<Flow>,
    pub namespaces: Namespaces,
}

/// Renders every object of the application.
pub fn render(values: &Values, secrets: &Secrets) -> Result<Rendered> {
    if let Some((path, message)) = values.check().into_iter().next() {
        return Err(Error::Value {
            origin: Origin::Default,
            path,
            message,
        });
    }
    let r = Renderer::new(values);
    let mut objects = Vec::new();
    for namespace in r.namespaces.all() {
        objects.push(Object::Namespace(r.namespace(namespace)));
    }
    if values.network_policies.enabled {
        for (namespace, name, spec) in network_policy_specs(values, &r.instance) {
            let mut policy = network_policy(spec);
            policy.metadata = r.meta(&name, &namespace, None);
            objects.push(Object::NetworkPolicy(policy));
        }
    }
    for component in Component::ALL {
        objects.push(Object::ServiceAccount(r.service_account(component)));
        objects.push(Object::PodDisruptionBudget(r.pdb(component)));
    }
    if let Some(password) = &secrets.postgres_password {
        for namespace in [
            &r.namespaces.api,
            &r.namespaces.consumer,
            &r.namespaces.data,
        ] {
            objects.push(Object::Secret(r.password_secret(namespace, password)));
        }
    }
    objects.push(Object::Service(r.api_service()));
    objects.push(Object::Service(r.frontend_service()));
    objects.push(Object::Service(r.headless_service(Component::Redis)));
    objects.push(Object::Service(r.headless_service(Component::Postgres)));
    objects.push(Object::Deployment(r.api()));
    objects.push(Object::Deployment(r.consumer()));
    objects.push(Object::Deployment(r.frontend()));
    objects.push(Object::StatefulSet(r.redis()));
    objects.push(Object::StatefulSet(r.postgres()));

    objects.sort_by(|a, b| {
        (a.kind_rank(), a.namespace(), a.name()).cmp(&(b.kind_rank(), b.namespace(), b.name()))
    });
    Ok(Rendered {
        objects,
        flows: intended_flows(values),
        namespaces: r.namespaces,
    })
}

struct Renderer<'v> {
    values: &'v Values,
    namespaces: Namespaces,
    /// The `app.kubernetes.io/instance` label: tells two installs in one cluster apart.
    instance: String,
}

fn string(s: impl Into<String>) -> Option<String> {
    Some(s.into())
}

fn quantity(q: &crate::values::Quantity) -> Quantity {
    Quantity(q.to_string())
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn env_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn empty_dir(name: &str, size: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: None,
            size_limit: Some(Quantity(size.to_owned())),
        }),
        ..Volume::default()
    }
}

fn resources(r: &Resources) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity(&r.requests.cpu)),
            ("memory".to_owned(), quantity(&r.requests.memory)),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity(&r.limits.cpu)),
            ("memory".to_owned(), quantity(&r.limits.memory)),
        ])),
        claims: None,
    }
}

/// The container rules every container follows.
fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

/// The pod rules every pod follows, as the image's user.
fn pod_security(uid: u32, gid: u32, fs_group: u32) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(i64::from(uid)),
        run_as_group: Some(i64::from(gid)),
        fs_group: Some(i64::from(fs_group)),
        fs_group_change_policy: string("OnRootMismatch"),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: string(path),
            port: IntOrString::String("http".to_owned()),
            scheme: string("HTTP"),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn exec_probe(command: Vec<String>, period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn tcp_probe(port_name: &str, period: i32, failures: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port_name.to_owned()),
            host: None,
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: string(name),
        container_port: i32::from(port),
        protocol: string("TCP"),
        ..ContainerPort::default()
    }
}

impl<'v> Renderer<'v> {
    fn new(values: &'v Values) -> Self {
        let namespaces = Namespaces::of(values);
        let instance = format!("{}{PART_OF}", values.namespace_prefix);
        Self {
            values,
            namespaces,
            instance,
        }
    }

    fn labels(&self, component: Option<Component>) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = self
            .values
            .common_labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.insert("app.kubernetes.io/part-of".to_owned(), PART_OF.to_owned());
        labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            MANAGED_BY.to_owned(),
        );
        labels.insert(
            "app.kubernetes.io/instance".to_owned(),
            self.instance.clone(),
        );
        if let Some(component) = component {
            labels.extend(selector_labels(component, &self.instance));
            labels.insert(
                "app.kubernetes.io/component".to_owned(),
                component.role().to_owned(),
            );
        }
        labels
    }

    fn meta(&self, name: &str, namespace: &str, component: Option<Component>) -> ObjectMeta {
        ObjectMeta {
            name: string(name),
            namespace: string(namespace),
            labels: Some(self.labels(component)),
            ..ObjectMeta::default()
        }
    }

    fn component_meta(&self, component: Component) -> ObjectMeta {
        self.meta(
            component.name(),
            component.namespace(&self.namespaces),
            Some(component),
        )
    }

    fn selector(&self, component: Component) -> LabelSelector {
        LabelSelector {
            match_labels: Some(selector_labels(component, &self.instance)),
            ..LabelSelector::default()
        }
    }

    fn svc_host(&self, component: Component) -> String {
        format!(
            "{}.{}.svc.{}",
            component.name(),
            component.namespace(&self.namespaces),
            self.values.cluster_domain
        )
    }

    fn namespace(&self, name: &str) -> Namespace {
        let mut labels = self.labels(None);
        // Pod Security Admission enforces what these manifests promise, on every pod of the namespace.
        for mode in ["enforce", "audit", "warn"] {
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}"),
                "restricted".to_owned(),
            );
        }
        Namespace {
            metadata: ObjectMeta {
                name: string(name),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    fn service_account(&self, component: Component) -> ServiceAccount {
        ServiceAccount {
            metadata: self.component_meta(component),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        }
    }

    fn pdb(&self, component: Component) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: self.component_meta(component),
            spec: Some(PodDisruptionBudgetSpec {
                // maxUnavailable rather than minAvailable: with one replica, minAvailable 1 would
                // block every node drain.
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(self.selector(component)),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        }
    }

    fn password_secret(&self, namespace: &str, password: &Password) -> Secret {
        Secret {
            metadata: self.meta(
                self.values.postgresql.password_secret.as_str(),
                namespace,
                None,
            ),
            type_: string("Opaque"),
            data: Some(BTreeMap::from([(
                PASSWORD_KEY.to_owned(),
                ByteString(password.expose().as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    fn api_service(&self) -> Service {
        Service {
            metadata: self.component_meta(Component::Api),
            spec: Some(ServiceSpec {
                type_: string("ClusterIP"),
                selector: Some(selector_labels(Component::Api, &self.instance)),
                ports: Some(vec![ServicePort {
                    name: string("http"),
                    port: i32::from(Component::Api.port()),
                    target_port: Some(IntOrString::String("http".to_owned())),
                    protocol: string("TCP"),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn frontend_service(&self) -> Service {
        let service = &self.values.frontend.service;
        Service {
            metadata: self.component_meta(Component::Frontend),
            spec: Some(ServiceSpec {
                type_: string(service.type_.as_str()),
                selector: Some(selector_labels(Component::Frontend, &self.instance)),
                ports: Some(vec![ServicePort {
                    name: string("http"),
                    port: i32::from(Component::Frontend.port()),
                    target_port: Some(IntOrString::String("http".to_owned())),
                    node_port: service.node_port.map(i32::from),
                    protocol: string("TCP"),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    /// The StatefulSet's governing Service: stable DNS names, no virtual IP.
    fn headless_service(&self, component: Component) -> Service {
        Service {
            metadata: self.component_meta(component),
            spec: Some(ServiceSpec {
                cluster_ip: string("None"),
                selector: Some(selector_labels(component, &self.instance)),
                ports: Some(vec![ServicePort {
                    name: string(component.name()),
                    port: i32::from(component.port()),
                    target_port: Some(IntOrString::String(component.name().to_owned())),
                    protocol: string("TCP"),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn redis_url(&self) -> String {
        let url = &self.values.redis.url;
        if url.in_cluster() {
            url.with_host(&self.svc_host(Component::Redis))
        } else {
            url.to_string()
        }
    }

    fn database_url(&self) -> String {
        let url = &self.values.postgresql.url;
        if url.in_cluster() {
            url.with_host(&self.svc_host(Component::Postgres))
        } else {
            url.to_string()
        }
    }

    fn password_volume(&self) -> Volume {
        Volume {
            name: "postgres-password".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: string(self.values.postgresql.password_secret.as_str()),
                items: Some(vec![KeyToPath {
                    key: PASSWORD_KEY.to_owned(),
                    path: PASSWORD_KEY.to_owned(),
                    mode: None,
                }]),
                // Owner root, group = the pod's fsGroup: readable by the pod's user only.
                default_mode: Some(0o440),
                optional: Some(false),
            }),
            ..Volume::default()
        }
    }

    fn password_file(&self) -> String {
        format!("{PASSWORD_DIR}/{PASSWORD_KEY}")
    }

    /// One of our services: the image's user, /tmp as an emptyDir, probes on /health and /ready.
    #[allow(clippy::too_many_arguments)]
    fn service_deployment(
        &self,
        component: Component,
        image: &Image,
        replicas: u16,
        resources_: &Resources,
        mut env_vars: Vec<EnvVar>,
        needs_password: bool,
    ) -> Deployment {
        env_vars.push(env(var::LOG_FORMAT, "json"));
        env_vars.push(env(var::LOG_LEVEL, self.values.log_level.as_str()));
        env_vars.push(env_field(var::POD_NAME, "metadata.name"));
        let mut mounts = vec![mount("tmp", "/tmp", false)];
        let mut volumes = vec![empty_dir("tmp", "64Mi")];
        if needs_password {
            mounts.push(mount("postgres-password", PASSWORD_DIR, true));
            volumes.push(self.password_volume());
        }
        let container = Container {
            name: component.name().to_owned(),
            image: Some(image.reference()),
            image_pull_policy: string(image.pull_policy.as_str()),
            ports: Some(vec![container_port("http", component.port())]),
            env: Some(env_vars),
            resources: Some(resources(resources_)),
            startup_probe: Some(http_probe(path::HEALTH, 2, 30)),
            liveness_probe: Some(http_probe(path::HEALTH, 10, 3)),
            readiness_probe: Some(http_probe(path::READY, 5, 3)),
            security_context: Some(container_security()),
            volume_mounts: Some(mounts),
            ..Container::default()
        };
        Deployment {
            metadata: self.component_meta(component),
            spec: Some(DeploymentSpec {
                replicas: Some(i32::from(replicas)),
                revision_history_limit: Some(5),
                selector: self.selector(component),
                strategy: Some(DeploymentStrategy {
                    type_: string("RollingUpdate"),
                    // Never below the wanted count during a rollout; one extra pod at a time.
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(1)),
                        max_unavailable: Some(IntOrString::Int(0)),
                    }),
                }),
                template: self.pod_template(
                    component,
                    pod_security(
                        deploy::NONROOT_UID,
                        deploy::NONROOT_GID,
                        deploy::NONROOT_GID,
                    ),
                    container,
                    volumes,
                ),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn pod_template(
        &self,
        component: Component,
        security: PodSecurityContext,
        container: Container,
        volumes: Vec<Volume>,
    ) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(self.labels(Some(component))),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                service_account_name: string(component.name()),
                automount_service_account_token: Some(false),
                // Service links would put variables like API_PORT=tcp://… into the environment.
                enable_service_links: Some(false),
                security_context: Some(security),
                // PostgreSQL's fast stop (its preStop hook) gets up to 50 s to checkpoint.
                termination_grace_period_seconds: Some(match component {
                    Component::Postgres => 60,
                    _ => 30,
                }),
                containers: vec![container],
                volumes: Some(volumes),
                ..PodSpec::default()
            }),
        }
    }

    fn api(&self) -> Deployment {
        let v = self.values;
        let mut env_vars = vec![
            env(var::PORT, Component::Api.port().to_string()),
            env(var::REDIS_URL, self.redis_url()),
            env(var::DATABASE_URL, self.database_url()),
            env(var::DATABASE_PASSWORD_FILE, self.password_file()),
            env(var::VOTE_OPTIONS, v.vote_options.to_string()),
        ];
        if !v.api.cors_origins.as_slice().is_empty() {
            env_vars.push(env(var::CORS_ORIGINS, v.api.cors_origins.joined()));
        }
        self.service_deployment(
            Component::Api,
            &v.images.api,
            v.api.replicas,
            &v.api.resources,
            env_vars,
            true,
        )
    }

    fn consumer(&self) -> Deployment {
        let v = self.values;
        let env_vars = vec![
            env(var::PORT, Component::Consumer.port().to_string()),
            env(var::REDIS_URL, self.redis_url()),
            env(var::DATABASE_URL, self.database_url()),
            env(var::DATABASE_PASSWORD_FILE, self.password_file()),
            env(var::VOTE_OPTIONS, v.vote_options.to_string()),
        ];
        self.service_deployment(
            Component::Consumer,
            &v.images.consumer,
            v.consumer.replicas,
            &v.consumer.resources,
            env_vars,
            true,
        )
    }

    fn frontend(&self) -> Deployment {
        let v = self.values;
        let env_vars = vec![
            env(var::PORT, Component::Frontend.port().to_string()),
            env(
                var::API_URL,
                format!(
                    "http://{}:{}",
                    self.svc_host(Component::Api),
                    Component::Api.port()
                ),
            ),
        ];
        self.service_deployment(
            Component::Frontend,
            &v.images.frontend,
            v.frontend.replicas,
            &v.frontend.resources,
            env_vars,
            false,
        )
    }

    fn stateful_set(
        &self,
        component: Component,
        user: &ImageUser,
        container: Container,
        mut volumes: Vec<Volume>,
        persistence: &Persistence,
    ) -> StatefulSet {
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: string("data"),
                labels: Some(self.labels(Some(component))),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        quantity(&persistence.size),
                    )])),
                    limits: None,
                }),
                storage_class_name: persistence.storage_class.as_ref().map(ToString::to_string),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        };
        StatefulSet {
            metadata: self.component_meta(component),
            spec: Some(StatefulSetSpec {
                replicas: Some(1),
                service_name: string(component.name()),
                selector: self.selector(component),
                update_strategy: Some(StatefulSetUpdateStrategy {
                    type_: string("RollingUpdate"),
                    rolling_update: Some(RollingUpdateStatefulSetStrategy {
                        partition: Some(0),
                        max_unavailable: None,
                    }),
                }),
                revision_history_limit: Some(5),
                template: self.pod_template(
                    component,
                    pod_security(
                        user.run_as_user.get(),
                        user.run_as_group.get(),
                        user.fs_group.get(),
                    ),
                    container,
                    volumes,
                ),
                volume_claim_templates: Some(vec![claim]),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }
    }

    fn redis(&self) -> StatefulSet {
        let v = &self.values.redis;
        let image = &self.values.images.redis;
        let port = Component::Redis.port().to_string();
        let container = Container {
            name: "redis".to_owned(),
            image: Some(image.reference()),
            image_pull_policy: string(image.pull_policy.as_str()),
            // Arguments, not a command: the image's entrypoint stays in charge.
            args: Some(
                [
                    "redis-server",
                    "--port",
                    &port,
                    "--dir",
                    "/data",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "everysec",
                    // The NetworkPolicies admit only the api and consumer.
                    "--protected-mode",
                    "no",
                ]
                .map(str::to_owned)
                .to_vec(),
            ),
            ports: Some(vec![container_port("redis", Component::Redis.port())]),
            resources: Some(resources(&v.resources)),
            startup_probe: Some(tcp_probe("redis", 2, 60)),
            liveness_probe: Some(tcp_probe("redis", 10, 3)),
            // PONG only once the append-only file is loaded.
            readiness_probe: Some(exec_probe(
                [
                    "sh",
                    "-c",
                    &format!("test \"$(redis-cli -p {port} ping)\" = PONG"),
                ]
                .map(str::to_owned)
                .to_vec(),
                5,
                3,
            )),
            security_context: Some(container_security()),
            volume_mounts: Some(vec![
                mount("data", "/data", false),
                mount("tmp", "/tmp", false),
            ]),
            ..Container::default()
        };
        self.stateful_set(
            Component::Redis,
            &v.security_context,
            container,
            vec![empty_dir("tmp", "64Mi")],
            &v.persistence,
        )
    }

    fn postgres(&self) -> StatefulSet {
        let v = &self.values.postgresql;
        let image = &self.values.images.postgres;
        let port = Component::Postgres.port().to_string();
        let is_ready = exec_probe(
            [
                "pg_isready",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                v.url.user(),
                "-d",
                v.url.database(),
            ]
            .map(str::to_owned)
            .to_vec(),
            10,
            3,
        );
        let container = Container {
            name: "postgres".to_owned(),
            image: Some(image.reference()),
            image_pull_policy: string(image.pull_policy.as_str()),
            env: Some(vec![
                env("POSTGRES_USER", v.url.user()),
                env("POSTGRES_DB", v.url.database()),
                env("POSTGRES_PASSWORD_FILE", self.password_file()),
                env("PGDATA", PGDATA),
                env("PGPORT", port.as_str()),
            ]),
            ports: Some(vec![container_port("postgres", Component::Postgres.port())]),
            resources: Some(resources(&v.resources)),
            // initdb on first start takes a while.
            startup_probe: Some(Probe {
                period_seconds: Some(2),
                failure_threshold: Some(90),
                ..is_ready.clone()
            }),
            liveness_probe: Some(Probe {
                failure_threshold: Some(6),
                ..is_ready.clone()
            }),
            readiness_probe: Some(Probe {
                period_seconds: Some(5),
                ..is_ready
            }),
            // SIGTERM is PostgreSQL's "smart" shutdown, which waits for the api's and consumer's
            // pooled connections to end: past the grace period that is a SIGKILL and crash
            // recovery. Stop it in "fast" mode first (roll back, disconnect, checkpoint).
            lifecycle: Some(Lifecycle {
                pre_stop: Some(LifecycleHandler {
                    exec: Some(ExecAction {
                        command: Some(
                            [
                                "pg_ctl", "stop", "-D", PGDATA, "-m", "fast", "-w", "-t", "50",
                            ]
                            .map(str::to_owned)
                            .to_vec(),
                        ),
                    }),
                    ..LifecycleHandler::default()
                }),
                ..Lifecycle::default()
            }),
            security_context: Some(container_security()),
            volume_mounts: Some(vec![
                mount("data", "/var/lib/postgresql/data", false),
                mount("run", "/var/run/postgresql", false),
                mount("tmp", "/tmp", false),
                mount("postgres-password", PASSWORD_DIR, true),
            ]),
            ..Container::default()
        };
        self.stateful_set(
            Component::Postgres,
            &v.security_context,
            container,
            vec![
                empty_dir("tmp", "64Mi"),
                empty_dir("run", "16Mi"),
                self.password_volume(),
            ],
            &v.persistence,
        )
    }
}
