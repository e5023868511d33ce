//! The application's components, where they live, which connections between them are intended, and
//! the NetworkPolicies that allow exactly those.
//!
//! Invariant: the NetworkPolicies are *derived* from [`intended_flows`], never written beside it, so the
//! declared intent and the rendered policies cannot disagree; `votectl check` and `votectl verify
//! --network-policies` compare a cluster's observed reachability against the same list.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use vote_contract::{deploy, settings::port};

use crate::values::Values;

/// One workload of the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Component {
    Frontend,
    Api,
    Consumer,
    Redis,
    Postgres,
}

impl Component {
    pub const ALL: [Component; 5] = [
        Component::Frontend,
        Component::Api,
        Component::Consumer,
        Component::Redis,
        Component::Postgres,
    ];

    /// Its name: of the Deployment or StatefulSet, its Service, ServiceAccount and PDB, and the value
    /// of its `app.kubernetes.io/name` label.
    pub fn name(self) -> &'static str {
        match self {
            Component::Frontend => deploy::FRONTEND,
            Component::Api => deploy::API,
            Component::Consumer => deploy::CONSUMER,
            Component::Redis => "redis",
            Component::Postgres => "postgres",
        }
    }

    /// Its `app.kubernetes.io/component` label: the role it plays.
    pub fn role(self) -> &'static str {
        match self {
            Component::Frontend => "frontend",
            Component::Api => "backend",
            Component::Consumer => "worker",
            Component::Redis => "queue",
            Component::Postgres => "database",
        }
    }

    /// The port it listens on.
    pub fn port(self) -> u16 {
        match self {
            Component::Frontend => port::FRONTEND,
            Component::Api => port::API,
            Component::Consumer => port::CONSUMER,
            Component::Redis => port::REDIS,
            Component::Postgres => port::POSTGRES,
        }
    }

    /// The namespace it runs in.
    pub fn namespace(self, namespaces: &Namespaces) -> &str {
        match self {
            Component::Frontend => &namespaces.frontend,
            Component::Api => &namespaces.api,
            Component::Consumer => &namespaces.consumer,
            Component::Redis | Component::Postgres => &namespaces.data,
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The four namespaces, with the values' prefix applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Namespaces {
    pub frontend: String,
    pub api: String,
    pub consumer: String,
    pub data: String,
}

impl Namespaces {
    pub fn of(values: &Values) -> Self {
        let prefix = values.namespace_prefix.as_str();
        Self {
            frontend: format!("{prefix}voting-frontend"),
            api: format!("{prefix}voting-api"),
            consumer: format!("{prefix}voting-consumer"),
            data: format!("{prefix}voting-data"),
        }
    }

    /// All four, in a fixed order.
    pub fn all(&self) -> [&str; 4] {
        [&self.frontend, &self.api, &self.consumer, &self.data]
    }
}

/// One end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Peer {
    /// The pods of one of our components.
    Workload {
        namespace: String,
        component: Component,
    },
    /// Any pod of a namespace (the cluster DNS, an ingress controller).
    Namespace { namespace: String },
    /// Any client outside the application, inside or outside the cluster (the application's own
    /// pods connect only where a flow names them).
    Anywhere,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Workload {
                namespace,
                component,
            } => write!(f, "{namespace}/{component}"),
            Peer::Namespace { namespace } => write!(f, "{namespace}/*"),
            Peer::Anywhere => f.write_str("anywhere"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// A connection the application needs: `from` may open a connection to `to` on `port`/`protocol`.
/// Anything not listed is intended to be refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Flow {
    pub from: Peer,
    pub to: Peer,
    pub port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} {}/{}",
            self.from,
            self.to,
            self.port,
            self.protocol.as_str()
        )
    }
}

/// The intended flows, in a fixed order. They hold whether or not NetworkPolicies are rendered
/// (`networkPolicies.enabled`): they are what the application needs, and the policies enforce them.
pub fn intended_flows(values: &Values) -> Vec<Flow> {
    let namespaces = Namespaces::of(values);
    let workload = |component: Component| Peer::Workload {
        namespace: component.namespace(&namespaces).to_owned(),
        component,
    };
    let tcp = |from: Peer, to: Component| Flow {
        from,
        to: workload(to),
        port: to.port(),
        protocol: Protocol::Tcp,
    };
    let ingress_source = match &values.network_policies.ingress_namespace {
        Some(namespace) => Peer::Namespace {
            namespace: namespace.to_string(),
        },
        None => Peer::Anywhere,
    };
    let mut flows = vec![
        tcp(ingress_source, Component::Frontend),
        tcp(workload(Component::Frontend), Component::Api),
    ];
    for client in [Component::Api, Component::Consumer] {
        for store in [Component::Redis, Component::Postgres] {
            flows.push(tcp(workload(client), store));
        }
    }
    let dns = Peer::Namespace {
        namespace: values.network_policies.dns_namespace.to_string(),
    };
    for client in [Component::Frontend, Component::Api, Component::Consumer] {
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            flows.push(Flow {
                from: workload(client),
                to: dns.clone(),
                port: 53,
                protocol,
            });
        }
    }
    flows
}

/// Labels that select one component's pods (also the workloads' selectors).
pub(crate) fn selector_labels(component: Component, instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            component.name().to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), instance.to_owned()),
    ])
}

fn namespace_selector(namespace: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            namespace.to_owned(),
        )])),
        ..LabelSelector::default()
    }
}

/// `None` for [`Peer::Anywhere`]: a rule without peers admits every source or destination.
fn policy_peer(peer: &Peer, instance: &str) -> Option<NetworkPolicyPeer> {
    match peer {
        Peer::Workload {
            namespace,
            component,
        } => Some(NetworkPolicyPeer {
            namespace_selector: Some(namespace_selector(namespace)),
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(*component, instance)),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        }),
        Peer::Namespace { namespace } => Some(NetworkPolicyPeer {
            namespace_selector: Some(namespace_selector(namespace)),
            ..NetworkPolicyPeer::default()
        }),
        Peer::Anywhere => None,
    }
}

/// Groups flows by peer, keeping first-seen order: one rule per peer with all its ports. A rule allows
/// its peers on any of its ports, so grouping by peer allows exactly the union of the flows.
fn rules_by_peer<'f>(
    flows: impl Iterator<Item = (&'f Peer, &'f Flow)>,
) -> Vec<(&'f Peer, Vec<NetworkPolicyPort>)> {
    let mut rules: Vec<(&Peer, Vec<NetworkPolicyPort>)> = Vec::new();
    for (peer, flow) in flows {
        let port = NetworkPolicyPort {
            port: Some(IntOrString::Int(i32::from(flow.port))),
            protocol: Some(flow.protocol.as_str().to_owned()),
            end_port: None,
        };
        match rules.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, ports)) => ports.push(port),
            None => rules.push((peer, vec![port])),
        }
    }
    rules
}

/// The policy specs: a default-deny (ingress and egress) per namespace, then one allow policy per
/// component built from the flows that start or end at it. Returns `(namespace, name, spec)`.
pub(crate) fn network_policy_specs(
    values: &Values,
    instance: &str,
) -> Vec<(String, String, NetworkPolicySpec)> {
    let namespaces = Namespaces::of(values);
    let flows = intended_flows(values);
    let types = |ingress: bool, egress: bool| {
        let mut types = Vec::new();
        if ingress {
            types.push("Ingress".to_owned());
        }
        if egress {
            types.push("Egress".to_owned());
        }
        Some(types)
    };
    let mut specs = Vec::new();
    for namespace in namespaces.all() {
        specs.push((
            namespace.to_owned(),
            "default-deny".to_owned(),
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: types(true, true),
                ingress: None,
                egress: None,
            },
        ));
    }
    for component in Component::ALL {
        let me = Peer::Workload {
            namespace: component.namespace(&namespaces).to_owned(),
            component,
        };
        let ingress: Vec<NetworkPolicyIngressRule> =
            rules_by_peer(flows.iter().filter(|f| f.to == me).map(|f| (&f.from, f)))
                .into_iter()
                .map(|(peer, ports)| NetworkPolicyIngressRule {
                    from: policy_peer(peer, instance).map(|p| vec![p]),
                    ports: Some(ports),
                })
                .collect();
        let egress: Vec<NetworkPolicyEgressRule> =
            rules_by_peer(flows.iter().filter(|f| f.from == me).map(|f| (&f.to, f)))
                .into_iter()
                .map(|(peer, ports)| NetworkPolicyEgressRule {
                    to: policy_peer(peer, instance).map(|p| vec![p]),
                    ports: Some(ports),
                })
                .collect();
        if ingress.is_empty() && egress.is_empty() {
            continue;
        }
        specs.push((
            component.namespace(&namespaces).to_owned(),
            format!("allow-{}", component.name()),
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector_labels(component, instance)),
                    ..LabelSelector::default()
                }),
                policy_types: types(!ingress.is_empty(), !egress.is_empty()),
                ingress: (!ingress.is_empty()).then_some(ingress),
                egress: (!egress.is_empty()).then_some(egress),
            },
        ));
    }
    specs
}

/// Wraps specs into objects (metadata is added by the caller).
pub(crate) fn network_policy(spec: NetworkPolicySpec) -> NetworkPolicy {
    NetworkPolicy {
        spec: Some(spec),
        ..NetworkPolicy::default()
    }
}
