//! A model of Kubernetes NetworkPolicy semantics, and the reachability matrices built with it.
//!
//! [`Model::verdict`] answers "would this connection be allowed?" for two concrete [`Host`]s, a port
//! and a protocol, from the NetworkPolicies and Namespaces among a set of objects, the way the API
//! documents it: a pod is isolated for ingress (egress) once any policy of its namespace selects it
//! with that policy type; then a connection needs a rule of one of those policies admitting the
//! peer on that port. A connection is allowed when the source's egress *and* the destination's
//! ingress allow it. The model is independent of how the manifests build their policies, so it can
//! judge them, and it knows nothing of any particular application: intent comes only from the
//! [`Flow`]s.
//!
//! [`expected`] turns the intended flows into a [`Matrix`]; [`modelled`] evaluates the policies
//! into one; `votectl verify --network-policies` fills one by probing a cluster. [`compare`] lists
//! where two disagree.
//!
//! Limits, stated in the checklist: pods have no IP addresses here, so an `ipBlock` peer is taken to
//! match anything outside the cluster ([`Endpoint::External`]), and pods only when its CIDR is a `/0`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use votectl_manifests::{Component, Flow, Namespaces, Object, Peer, Protocol};

/// The label every namespace carries with its own name (set by the API server since 1.21).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The labels of the pods standing in for pods that are not part of the application.
pub fn other_pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "app.kubernetes.io/name".to_owned(),
        "not-of-the-application".to_owned(),
    )])
}

/// One end of a probed connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Endpoint {
    /// The pods of one of the application's workloads.
    Workload {
        namespace: String,
        component: Component,
    },
    /// A pod that is not part of the application, in `namespace` (the cluster DNS, an ingress
    /// controller, a stranger started next to the application's pods).
    Other { namespace: String },
    /// An address outside the cluster.
    External,
}

impl Endpoint {
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Endpoint::Workload { namespace, .. } | Endpoint::Other { namespace } => Some(namespace),
            Endpoint::External => None,
        }
    }

    pub fn is_workload(&self) -> bool {
        matches!(self, Endpoint::Workload { .. })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Workload {
                namespace,
                component,
            } => write!(f, "{namespace}/{component}"),
            Endpoint::Other { namespace } => write!(f, "{namespace}/<other pod>"),
            Endpoint::External => f.write_str("<outside the cluster>"),
        }
    }
}

/// A named container port of a pod (NetworkPolicies may name ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// A concrete pod (or the outside world) as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub endpoint: Endpoint,
    /// The pod's labels (empty for [`Endpoint::External`]).
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<NamedPort>,
}

impl Host {
    pub fn other(namespace: &str) -> Self {
        Self {
            endpoint: Endpoint::Other {
                namespace: namespace.to_owned(),
            },
            labels: other_pod_labels(),
            ports: Vec::new(),
        }
    }

    pub fn external() -> Self {
        Self {
            endpoint: Endpoint::External,
            labels: BTreeMap::new(),
            ports: Vec::new(),
        }
    }
}

/// One cell of a matrix: may `from` open a connection to `to` on `port`/`protocol`?
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Probe {
    pub from: Endpoint,
    pub to: Endpoint,
    pub port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for Probe {
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

/// A NetworkPolicy, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PolicyRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the policies say about one direction of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum Side {
    /// No policy selects the pod for this direction: everything is allowed.
    NotIsolated,
    /// Isolated, and these policies have a rule that admits the connection.
    Allowed { by: Vec<PolicyRef> },
    /// Isolated by these policies, none of which admits the connection.
    Denied { isolated_by: Vec<PolicyRef> },
}

impl Side {
    pub fn allows(&self) -> bool {
        !matches!(self, Side::Denied { .. })
    }
}

/// Both directions of one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The source's egress.
    pub egress: Side,
    /// The destination's ingress.
    pub ingress: Side,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.egress.allows() && self.ingress.allows()
    }
}

/// The NetworkPolicies and namespace labels of a set of objects.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    policies: Vec<(PolicyRef, &'a NetworkPolicySpec)>,
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

impl<'a> Model<'a> {
    /// Takes the NetworkPolicies (a policy without a spec selects nothing) and the Namespaces'
    /// labels; a namespace that is not among the objects has only its name label.
    pub fn new(objects: &'a [Object]) -> Self {
        let mut policies = Vec::new();
        let mut namespace_labels = BTreeMap::new();
        for object in objects {
            match object {
                Object::NetworkPolicy(NetworkPolicy {
                    metadata,
                    spec: Some(spec),
                    ..
                }) => policies.push((
                    PolicyRef {
                        namespace: metadata.namespace.clone().unwrap_or_default(),
                        name: metadata.name.clone().unwrap_or_default(),
                    },
                    spec,
                )),
                Object::Namespace(ns) => {
                    let name = ns.metadata.name.clone().unwrap_or_default();
                    let mut labels = ns.metadata.labels.clone().unwrap_or_default();
                    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.clone());
                    namespace_labels.insert(name, labels);
                }
                _ => {}
            }
        }
        Self {
            policies,
            namespace_labels,
        }
    }

    fn labels_of_namespace(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespace_labels
            .get(namespace)
            .cloned()
            .unwrap_or_else(|| {
                BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned())])
            })
    }

    /// Whether the policies allow `from` to connect to `to` on `port`/`protocol`, and why.
    pub fn verdict(&self, from: &Host, to: &Host, port: u16, protocol: Protocol) -> Verdict {
        Verdict {
            egress: self.side(Direction::Egress, from, to, port, protocol),
            ingress: self.side(Direction::Ingress, to, from, port, protocol),
        }
    }

    /// `subject` is the pod whose policies are consulted, `peer` the other end; `port` is always
    /// the destination's.
    fn side(
        &self,
        direction: Direction,
        subject: &Host,
        peer: &Host,
        port: u16,
        protocol: Protocol,
    ) -> Side {
        let Some(namespace) = subject.endpoint.namespace() else {
            // Outside the cluster: no policy applies.
            return Side::NotIsolated;
        };
        let destination = match direction {
            Direction::Ingress => subject,
            Direction::Egress => peer,
        };
        let mut isolated_by = Vec::new();
        let mut allowed_by = Vec::new();
        for (policy, spec) in &self.policies {
            if policy.namespace != namespace
                || !selects_or_all(spec.pod_selector.as_ref(), &subject.labels)
                || !has_type(spec, direction)
            {
                continue;
            }
            isolated_by.push(policy.clone());
            let admits = match direction {
                Direction::Ingress => spec.ingress.iter().flatten().any(|rule| {
                    ports_match(rule.ports.as_deref(), destination, port, protocol)
                        && self.peers_match(rule.from.as_deref(), &policy.namespace, peer)
                }),
                Direction::Egress => spec.egress.iter().flatten().any(|rule| {
                    ports_match(rule.ports.as_deref(), destination, port, protocol)
                        && self.peers_match(rule.to.as_deref(), &policy.namespace, peer)
                }),
            };
            if admits {
                allowed_by.push(policy.clone());
            }
        }
        if isolated_by.is_empty() {
            Side::NotIsolated
        } else if allowed_by.is_empty() {
            Side::Denied { isolated_by }
        } else {
            Side::Allowed { by: allowed_by }
        }
    }

    /// A rule without peers (missing or empty) admits every peer.
    fn peers_match(
        &self,
        peers: Option<&[NetworkPolicyPeer]>,
        policy_namespace: &str,
        host: &Host,
    ) -> bool {
        match peers {
            None | Some([]) => true,
            Some(peers) => peers
                .iter()
                .any(|peer| self.peer_matches(peer, policy_namespace, host)),
        }
    }

    fn peer_matches(&self, peer: &NetworkPolicyPeer, policy_namespace: &str, host: &Host) -> bool {
        if let Some(block) = &peer.ip_block {
            return ip_block_matches(block, &host.endpoint);
        }
        let Some(namespace) = host.endpoint.namespace() else {
            // Selectors select pods; the outside world is reached only through ipBlocks.
            return false;
        };
        let namespace_ok = match &peer.namespace_selector {
            Some(selector) => selects(selector, &self.labels_of_namespace(namespace)),
            None => namespace == policy_namespace,
        };
        namespace_ok
            && peer
                .pod_selector
                .as_ref()
                .is_none_or(|selector| selects(selector, &host.labels))
    }
}

/// Whether a policy isolates the pods it selects for ingress and for egress: `(ingress, egress)`.
pub fn policy_types(spec: &NetworkPolicySpec) -> (bool, bool) {
    (
        has_type(spec, Direction::Ingress),
        has_type(spec, Direction::Egress),
    )
}

fn has_type(spec: &NetworkPolicySpec, direction: Direction) -> bool {
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types.iter().any(|t| {
            t == match direction {
                Direction::Ingress => "Ingress",
                Direction::Egress => "Egress",
            }
        }),
        // The API server's default: Ingress always, Egress when there are egress rules.
        _ => match direction {
            Direction::Ingress => true,
            Direction::Egress => spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
        },
    }
}

/// The API's label selector semantics: `matchLabels` and `matchExpressions` all hold; an empty
/// selector selects everything.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            // The API server refuses other operators; select nothing rather than guess.
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// A policy's `podSelector` is required; a missing one is read as `{}`, like an empty one.
fn selects_or_all(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_none_or(|s| selects(s, labels))
}

/// A rule without ports (missing or empty) admits every port. A named port is looked up among the
/// destination's container ports.
fn ports_match(
    ports: Option<&[NetworkPolicyPort]>,
    destination: &Host,
    port: u16,
    protocol: Protocol,
) -> bool {
    match ports {
        None | Some([]) => true,
        Some(ports) => ports.iter().any(|p| {
            p.protocol.as_deref().unwrap_or("TCP") == protocol.as_str()
                && match &p.port {
                    None => true,
                    Some(IntOrString::Int(first)) => {
                        let last = p.end_port.unwrap_or(*first);
                        (*first..=last).contains(&i32::from(port))
                    }
                    Some(IntOrString::String(name)) => destination
                        .ports
                        .iter()
                        .any(|n| n.name == *name && n.port == port && n.protocol == protocol),
                }
        }),
    }
}

fn ip_block_matches(block: &IPBlock, endpoint: &Endpoint) -> bool {
    match endpoint {
        Endpoint::External => true,
        _ => {
            block.cidr.ends_with("/0")
                && block.except.as_ref().is_none_or(|except| except.is_empty())
        }
    }
}

/// Whether a flow's end covers an endpoint. `Anywhere` is any client outside the application and
/// its namespaces: the application's own pods, and strangers among them, connect only where a flow
/// names them.
fn covers(peer: &Peer, endpoint: &Endpoint, namespaces: &Namespaces) -> bool {
    match (peer, endpoint) {
        (
            Peer::Workload {
                namespace,
                component,
            },
            Endpoint::Workload {
                namespace: n,
                component: c,
            },
        ) => namespace == n && component == c,
        (Peer::Namespace { namespace }, Endpoint::Other { namespace: n }) => namespace == n,
        (Peer::Anywhere, Endpoint::External) => true,
        (Peer::Anywhere, Endpoint::Other { namespace }) => {
            !namespaces.all().contains(&namespace.as_str())
        }
        _ => false,
    }
}

/// Whether the flows intend `probe` to connect.
pub fn intended(flows: &[Flow], namespaces: &Namespaces, probe: &Probe) -> bool {
    flows.iter().any(|f| {
        f.port == probe.port
            && f.protocol == probe.protocol
            && covers(&f.from, &probe.from, namespaces)
            && covers(&f.to, &probe.to, namespaces)
    })
}

/// Allowed (`true`) or refused (`false`), per probe.
pub type Matrix = BTreeMap<Probe, bool>;

/// The matrix the flows intend, over `probes`.
pub fn expected<'p>(
    flows: &[Flow],
    namespaces: &Namespaces,
    probes: impl IntoIterator<Item = &'p Probe>,
) -> Matrix {
    probes
        .into_iter()
        .map(|p| (p.clone(), intended(flows, namespaces, p)))
        .collect()
}

/// The matrix the policies of `model` allow, over `probes`, between `hosts`.
pub fn modelled<'p>(
    model: &Model<'_>,
    hosts: &[Host],
    probes: impl IntoIterator<Item = &'p Probe>,
) -> Matrix {
    let host = |endpoint: &Endpoint| hosts.iter().find(|h| h.endpoint == *endpoint);
    probes
        .into_iter()
        .filter_map(|p| {
            let verdict = model.verdict(host(&p.from)?, host(&p.to)?, p.port, p.protocol);
            Some((p.clone(), verdict.allowed()))
        })
        .collect()
}

/// A cell where two matrices disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub probe: Probe,
    pub expected: bool,
    /// `None`: the cell was not observed (a probe that could not run).
    pub observed: Option<bool>,
}

impl Mismatch {
    /// Allowed though not intended.
    pub fn is_unintended(&self) -> bool {
        !self.expected && self.observed == Some(true)
    }

    /// Intended though refused.
    pub fn is_blocked(&self) -> bool {
        self.expected && self.observed == Some(false)
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.expected, self.observed) {
            (false, Some(true)) => write!(f, "{} is allowed but not intended", self.probe),
            (true, Some(false)) => write!(f, "{} is intended but blocked", self.probe),
            (_, None) => write!(f, "{} was not observed", self.probe),
            _ => write!(f, "{} agrees", self.probe),
        }
    }
}

/// Every cell of `expected` that `observed` contradicts or lacks, in probe order.
pub fn compare(expected: &Matrix, observed: &Matrix) -> Vec<Mismatch> {
    expected
        .iter()
        .filter_map(|(probe, &want)| {
            let got = observed.get(probe).copied();
            (got != Some(want)).then(|| Mismatch {
                probe: probe.clone(),
                expected: want,
                observed: got,
            })
        })
        .collect()
}

/// The hosts worth probing for an application: its workloads as rendered (pod labels, container
/// ports), a pod that is not the application's in each of its namespaces and in each namespace a
/// flow names, one in an unrelated namespace, and the outside world.
pub fn hosts(objects: &[Object], flows: &[Flow], namespaces: &Namespaces) -> Vec<Host> {
    let mut hosts = Vec::new();
    for object in objects {
        let (Some(template), Some(namespace)) = (object.pod_template(), object.namespace()) else {
            continue;
        };
        let Some(component) = Component::ALL
            .into_iter()
            .find(|c| c.name() == object.name() && c.namespace(namespaces) == namespace)
        else {
            continue;
        };
        let ports = template
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                Some(NamedPort {
                    name: p.name.clone()?,
                    port: u16::try_from(p.container_port).ok()?,
                    protocol: match p.protocol.as_deref() {
                        Some("UDP") => Protocol::Udp,
                        _ => Protocol::Tcp,
                    },
                })
            })
            .collect();
        hosts.push(Host {
            endpoint: Endpoint::Workload {
                namespace: namespace.to_owned(),
                component,
            },
            labels: template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            ports,
        });
    }
    let mut others: BTreeSet<String> = namespaces.all().map(str::to_owned).into();
    for flow in flows {
        for peer in [&flow.from, &flow.to] {
            if let Peer::Namespace { namespace } = peer {
                others.insert(namespace.clone());
            }
        }
    }
    let elsewhere = (0..)
        .map(|i| match i {
            0 => "elsewhere".to_owned(),
            i => format!("elsewhere-{i}"),
        })
        .find(|n| !others.contains(n))
        .unwrap_or_default();
    others.insert(elsewhere);
    hosts.extend(others.iter().map(|ns| Host::other(ns)));
    hosts.push(Host::external());
    hosts
}

/// The ports worth probing: those of the flows and the components, DNS, HTTPS, and every port a
/// NetworkPolicy among `objects` names by number.
pub fn ports(objects: &[Object], flows: &[Flow]) -> BTreeSet<(u16, Protocol)> {
    let mut ports: BTreeSet<(u16, Protocol)> = flows.iter().map(|f| (f.port, f.protocol)).collect();
    ports.extend(Component::ALL.map(|c| (c.port(), Protocol::Tcp)));
    ports.extend([
        (53, Protocol::Udp),
        (53, Protocol::Tcp),
        (443, Protocol::Tcp),
    ]);
    for object in objects {
        let Object::NetworkPolicy(NetworkPolicy {
            spec: Some(spec), ..
        }) = object
        else {
            continue;
        };
        let rule_ports = spec
            .ingress
            .iter()
            .flatten()
            .flat_map(|r| r.ports.iter().flatten())
            .chain(
                spec.egress
                    .iter()
                    .flatten()
                    .flat_map(|r| r.ports.iter().flatten()),
            );
        for p in rule_ports {
            if let Some(IntOrString::Int(n)) = p.port
                && let Ok(n) = u16::try_from(n)
            {
                let protocol = match p.protocol.as_deref() {
                    Some("UDP") => Protocol::Udp,
                    _ => Protocol::Tcp,
                };
                ports.insert((n, protocol));
            }
        }
    }
    ports
}

/// Every connection between two different hosts, at least one of them a workload of the
/// application (traffic between others is not the application's to judge), on every port.
pub fn probes(hosts: &[Host], ports: &BTreeSet<(u16, Protocol)>) -> Vec<Probe> {
    let mut probes = Vec::new();
    for from in hosts {
        for to in hosts {
            if from.endpoint == to.endpoint
                || !(from.endpoint.is_workload() || to.endpoint.is_workload())
            {
                continue;
            }
            for &(port, protocol) in ports {
                probes.push(Probe {
                    from: from.endpoint.clone(),
                    to: to.endpoint.clone(),
                    port,
                    protocol,
                });
            }
        }
    }
    probes
}

/// A disagreement between the policies and the intended flows, with the model's reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    pub probe: Probe,
    /// `true`: allowed but not intended; `false`: intended but blocked.
    pub allowed: bool,
    pub verdict: Verdict,
}

/// The policies among `objects`, evaluated over every probe between the application's hosts and
/// compared with the flows.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// How many connections were evaluated.
    pub probes: usize,
    pub discrepancies: Vec<Discrepancy>,
}

/// Evaluates the NetworkPolicies among `objects` against the intended `flows`.
pub fn evaluate(objects: &[Object], flows: &[Flow], namespaces: &Namespaces) -> Evaluation {
    let model = Model::new(objects);
    let hosts = hosts(objects, flows, namespaces);
    let ports = ports(objects, flows);
    let probes = probes(&hosts, &ports);
    let host = |endpoint: &Endpoint| hosts.iter().find(|h| h.endpoint == *endpoint);
    let mut discrepancies = Vec::new();
    for probe in &probes {
        let (Some(from), Some(to)) = (host(&probe.from), host(&probe.to)) else {
            continue;
        };
        let verdict = model.verdict(from, to, probe.port, probe.protocol);
        let allowed = verdict.allowed();
        if allowed != intended(flows, namespaces, probe) {
            discrepancies.push(Discrepancy {
                probe: probe.clone(),
                allowed,
                verdict,
            });
        }
    }
    Evaluation {
        probes: probes.len(),
        discrepancies,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_follow_the_api() {
        let pod = labels(&[("app", "api"), ("tier", "back")]);
        assert!(selects(&LabelSelector::default(), &pod));
        let expr = |operator: &str, values: Option<&[&str]>| LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".to_owned(),
                operator: operator.to_owned(),
                values: values.map(|v| v.iter().map(|s| (*s).to_owned()).collect()),
            }]),
            ..LabelSelector::default()
        };
        assert!(selects(&expr("In", Some(&["back", "x"])), &pod));
        assert!(!selects(&expr("In", Some(&["front"])), &pod));
        assert!(selects(&expr("NotIn", Some(&["front"])), &pod));
        assert!(selects(&expr("NotIn", Some(&["front"])), &labels(&[])));
        assert!(selects(&expr("Exists", None), &pod));
        assert!(!selects(&expr("DoesNotExist", None), &pod));
        assert!(!selects(&expr("Bogus", None), &pod));
    }

    #[test]
    fn port_ranges_and_named_ports() {
        let host = Host {
            endpoint: Endpoint::External,
            labels: BTreeMap::new(),
            ports: vec![NamedPort {
                name: "http".to_owned(),
                port: 8000,
                protocol: Protocol::Tcp,
            }],
        };
        let range = NetworkPolicyPort {
            port: Some(IntOrString::Int(8000)),
            end_port: Some(8080),
            protocol: None,
        };
        assert!(ports_match(
            Some(std::slice::from_ref(&range)),
            &host,
            8042,
            Protocol::Tcp
        ));
        assert!(!ports_match(
            Some(std::slice::from_ref(&range)),
            &host,
            8042,
            Protocol::Udp
        ));
        assert!(!ports_match(Some(&[range]), &host, 8081, Protocol::Tcp));
        let named = NetworkPolicyPort {
            port: Some(IntOrString::String("http".to_owned())),
            ..NetworkPolicyPort::default()
        };
        assert!(ports_match(
            Some(std::slice::from_ref(&named)),
            &host,
            8000,
            Protocol::Tcp
        ));
        assert!(!ports_match(Some(&[named]), &host, 8001, Protocol::Tcp));
        assert!(ports_match(Some(&[]), &host, 1, Protocol::Udp));
    }

    #[test]
    fn policy_types_default_like_the_api_server() {
        let mut spec = NetworkPolicySpec::default();
        assert!(has_type(&spec, Direction::Ingress));
        assert!(!has_type(&spec, Direction::Egress));
        spec.egress = Some(vec![Default::default()]);
        assert!(has_type(&spec, Direction::Egress));
        spec.policy_types = Some(vec!["Egress".to_owned()]);
        assert!(!has_type(&spec, Direction::Ingress));
    }

    #[test]
    fn ip_blocks_match_the_outside_and_only_whole_ranges_match_pods() {
        let block = |cidr: &str| IPBlock {
            cidr: cidr.to_owned(),
            except: None,
        };
        let pod = Endpoint::Other {
            namespace: "x".to_owned(),
        };
        assert!(ip_block_matches(&block("10.0.0.0/8"), &Endpoint::External));
        assert!(!ip_block_matches(&block("10.0.0.0/8"), &pod));
        assert!(ip_block_matches(&block("0.0.0.0/0"), &pod));
    }
}
