//! The catalogue: every check, with a stable id, its section, why it matters and how to fix it.
//!
//! Invariants (tested): ids are unique and never reused, the catalogue is ordered by section then id,
//! and every section has at least one check. The documentation (`docs/security.md`) is generated
//! from this list, so what the checklist says and what `votectl check` does cannot disagree.

use std::fmt;

use serde::Serialize;

use crate::input::Input;
use crate::report::{Finding, Report};
use crate::rules;

/// A chapter of the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Section {
    #[serde(rename = "Pod security")]
    PodSecurity,
    #[serde(rename = "Containers")]
    Containers,
    #[serde(rename = "Service accounts")]
    ServiceAccounts,
    #[serde(rename = "Network policies")]
    NetworkPolicies,
    #[serde(rename = "Secrets")]
    Secrets,
    #[serde(rename = "Images")]
    Images,
    #[serde(rename = "Resources & probes")]
    ResourcesAndProbes,
    #[serde(rename = "Namespaces")]
    Namespaces,
}

impl Section {
    pub const ALL: [Section; 8] = [
        Section::PodSecurity,
        Section::Containers,
        Section::ServiceAccounts,
        Section::NetworkPolicies,
        Section::Secrets,
        Section::Images,
        Section::ResourcesAndProbes,
        Section::Namespaces,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::PodSecurity => "Pod security",
            Section::Containers => "Containers",
            Section::ServiceAccounts => "Service accounts",
            Section::NetworkPolicies => "Network policies",
            Section::Secrets => "Secrets",
            Section::Images => "Images",
            Section::ResourcesAndProbes => "Resources & probes",
            Section::Namespaces => "Namespaces",
        }
    }

    /// The prefix of its checks' ids.
    pub fn prefix(self) -> &'static str {
        match self {
            Section::PodSecurity => "POD",
            Section::Containers => "CTR",
            Section::ServiceAccounts => "SA",
            Section::NetworkPolicies => "NET",
            Section::Secrets => "SEC",
            Section::Images => "IMG",
            Section::ResourcesAndProbes => "RES",
            Section::Namespaces => "NS",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// How bad a finding of the check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check of the catalogue.
#[derive(Debug, Serialize)]
pub struct Check {
    /// Stable: `POD-001`. Never reused for another check.
    pub id: &'static str,
    pub section: Section,
    pub severity: Severity,
    /// What holds when the check passes.
    pub title: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
    #[serde(skip)]
    pub(crate) eval: fn(&Input<'_>) -> Vec<Finding>,
}

impl Check {
    /// Runs the check; no findings means it passed.
    pub fn evaluate(&self, input: &Input<'_>) -> Vec<Finding> {
        (self.eval)(input)
    }
}

/// Every check, by section then id.
pub fn catalogue() -> &'static [Check] {
    CATALOGUE
}

/// The check with this id.
pub fn find(id: &str) -> Option<&'static Check> {
    CATALOGUE.iter().find(|c| c.id.eq_ignore_ascii_case(id))
}

/// Runs every check of the catalogue.
pub fn run(input: &Input<'_>) -> Report {
    Report::new(
        CATALOGUE
            .iter()
            .map(|check| (check, check.evaluate(input)))
            .collect(),
    )
}

static CATALOGUE: &[Check] = &[
    // ----- Pod security -----
    Check {
        id: "POD-001",
        section: Section::PodSecurity,
        severity: Severity::High,
        title: "Pods run as non-root (`runAsNonRoot: true`)",
        why: "With `runAsNonRoot` the kubelet refuses to start a container whose user is root, so an \
              image that silently changed to root, or an override, cannot run with root's power over \
              the node's shared kernel.",
        fix: "Set `spec.securityContext.runAsNonRoot: true` in the pod template and do not set it to \
              `false` on any container.",
        eval: rules::pods::run_as_non_root,
    },
    Check {
        id: "POD-002",
        section: Section::PodSecurity,
        severity: Severity::High,
        title: "Pods run as the image's own user: `runAsUser`, `runAsGroup`, `fsGroup`",
        why: "All three must be set, non-zero, and equal to the user the image was built for: 65532 \
              for the application's images, the values' `redis.securityContext` and \
              `postgresql.securityContext` for Redis and PostgreSQL. A pod whose user does not \
              match its image cannot read its own files and crash-loops, the original system's \
              worst outage; a missing `fsGroup` leaves volumes unwritable.",
        fix: "Render the manifests from the values (`votectl render`), which take the users from the \
              same constant the images are built with; for Redis and PostgreSQL set \
              `*.securityContext` to the image's user. Remove container-level overrides.",
        eval: rules::pods::image_user,
    },
    Check {
        id: "POD-003",
        section: Section::PodSecurity,
        severity: Severity::Medium,
        title: "Every container runs under the `RuntimeDefault` seccomp profile",
        why: "The container runtime's default seccomp profile blocks the system calls most kernel \
              exploits start with; without a profile a container may call all of them.",
        fix: "Set `spec.securityContext.seccompProfile.type: RuntimeDefault` in the pod template \
              (a container may choose `Localhost`, never `Unconfined`).",
        eval: rules::pods::seccomp,
    },
    Check {
        id: "POD-004",
        section: Section::PodSecurity,
        severity: Severity::Critical,
        title: "No host namespaces or ports: `hostNetwork`, `hostPID`, `hostIPC`, `hostPort`",
        why: "A pod in the node's network, process or IPC namespace sees and can reach everything of \
              the node and its other pods, and bypasses NetworkPolicies; a host port exposes it on \
              the node's address.",
        fix: "Remove `hostNetwork`, `hostPID`, `hostIPC` (or set them to `false`) and every \
              `hostPort`; expose workloads through Services.",
        eval: rules::pods::host_namespaces,
    },
    Check {
        id: "POD-005",
        section: Section::PodSecurity,
        severity: Severity::Critical,
        title: "No `hostPath` volumes",
        why: "A `hostPath` volume gives a container the node's file system: its credentials, its \
              container runtime socket, every other pod's data.",
        fix: "Use an `emptyDir` for scratch space and a PersistentVolumeClaim for data.",
        eval: rules::pods::host_path,
    },
    // ----- Containers -----
    Check {
        id: "CTR-001",
        section: Section::Containers,
        severity: Severity::Medium,
        title: "Root file systems are read-only (`readOnlyRootFilesystem: true`)",
        why: "An attacker who gets code execution cannot replace the binary, drop tools or persist \
              anything in the image's file system.",
        fix: "Set `securityContext.readOnlyRootFilesystem: true` on every container and mount an \
              `emptyDir` wherever it must write (`/tmp`, run directories).",
        eval: rules::containers::read_only_root,
    },
    Check {
        id: "CTR-002",
        section: Section::Containers,
        severity: Severity::High,
        title: "No privilege escalation (`allowPrivilegeEscalation: false`)",
        why: "It sets `no_new_privs`: no setuid binary or file capability can give the process more \
              privileges than it started with.",
        fix: "Set `securityContext.allowPrivilegeEscalation: false` on every container.",
        eval: rules::containers::no_privilege_escalation,
    },
    Check {
        id: "CTR-003",
        section: Section::Containers,
        severity: Severity::High,
        title: "All capabilities dropped, none added",
        why: "The runtime's default capabilities (`NET_RAW`, `CHOWN`, `SETUID`, …) are enough for \
              ARP spoofing and privilege tricks; none of the application's processes needs any.",
        fix: "Set `securityContext.capabilities.drop: [ALL]` and no `add` on every container.",
        eval: rules::containers::capabilities,
    },
    Check {
        id: "CTR-004",
        section: Section::Containers,
        severity: Severity::Critical,
        title: "No privileged containers",
        why: "A privileged container has every capability and every device of the node: it is root \
              on the node.",
        fix: "Remove `securityContext.privileged: true` (or set it to `false`).",
        eval: rules::containers::not_privileged,
    },
    Check {
        id: "CTR-005",
        section: Section::Containers,
        severity: Severity::Low,
        title: "Writable mounts are scratch (`emptyDir`) or data volumes (claims)",
        why: "With a read-only root file system every writable path is a mount; each one should be \
              either throwaway or the workload's own persistent data, never a shared or host \
              volume.",
        fix: "Mount other volumes (Secrets, ConfigMaps, projected) with `readOnly: true`.",
        eval: rules::containers::writable_mounts,
    },
    // ----- Service accounts -----
    Check {
        id: "SA-001",
        section: Section::ServiceAccounts,
        severity: Severity::Medium,
        title: "No service account token is mounted (`automountServiceAccountToken: false`)",
        why: "None of the application's processes talks to the Kubernetes API; a mounted token would \
              only serve an attacker inside the pod.",
        fix: "Set `automountServiceAccountToken: false` on every ServiceAccount and pod template.",
        eval: rules::accounts::no_token,
    },
    Check {
        id: "SA-002",
        section: Section::ServiceAccounts,
        severity: Severity::Low,
        title: "Each workload has its own ServiceAccount, never `default`",
        why: "A dedicated account per workload means a permission granted to one (by a later \
              RoleBinding) is not granted to every pod of the namespace.",
        fix: "Create a ServiceAccount per workload and set `serviceAccountName` in its pod template.",
        eval: rules::accounts::own_account,
    },
    // ----- Network policies -----
    Check {
        id: "NET-001",
        section: Section::NetworkPolicies,
        severity: Severity::High,
        title: "Every namespace denies all ingress and all egress by default",
        why: "Without a policy that selects every pod for both directions, a new pod, or a port \
              nobody thought of, is reachable (and can reach out) freely: allow rules only ever \
              add to a default-deny.",
        fix: "Keep `networkPolicies.enabled: true`: each of the four namespaces gets a \
              `default-deny` policy with `podSelector: {}` and `policyTypes: [Ingress, Egress]`.",
        eval: rules::network::default_deny,
    },
    Check {
        id: "NET-002",
        section: Section::NetworkPolicies,
        severity: Severity::High,
        title: "The policies allow exactly the intended flows",
        why: "The NetworkPolicies are evaluated by a model of the API's semantics over every \
              connection between the application's pods, strangers in its namespaces, the \
              namespaces the flows name, an unrelated namespace and the outside world, on every \
              relevant port. Each connection allowed but not intended is a way in (or out); each \
              intended but blocked is an outage. An `ipBlock` is taken to match the outside world, \
              and pods only when it is a `/0`.",
        fix: "Change the intent, not the policies: the policies are derived from \
              `networkPolicies` in the values (`ingressNamespace`, `dnsNamespace`). Remove any \
              policy added by hand that opens more.",
        eval: rules::network::reachability,
    },
    // ----- Secrets -----
    Check {
        id: "SEC-001",
        section: Section::Secrets,
        severity: Severity::Critical,
        title: "No credentials in environment values, arguments or commands",
        why: "Pod specs are readable by anyone who may read Deployments, are stored unencrypted, and \
              end up in logs, `kubectl describe` and version control. The original values file \
              carried the database password in a URL.",
        fix: "Take passwords out of URLs (`user:password@`) and out of variables named like \
              `*PASSWORD*`, `*SECRET*`, `*TOKEN*`, `*_KEY`: put them in a Secret and point a \
              `*_FILE` variable at its mounted file.",
        eval: rules::secrets::no_credentials,
    },
    Check {
        id: "SEC-002",
        section: Section::Secrets,
        severity: Severity::High,
        title: "The PostgreSQL password reaches pods only as a read-only Secret file",
        why: "A secret in an environment variable is inherited by every child process and shows up \
              in crash dumps and `/proc/*/environ`; as a file it is read once, by the process that \
              needs it, and is not world-readable.",
        fix: "No `secretKeyRef` or `envFrom.secretRef`: mount the Secret `postgresql.passwordSecret` \
              read-only (mode 0440) and set `DATABASE_PASSWORD_FILE` (`POSTGRES_PASSWORD_FILE` for \
              PostgreSQL) to the file. Every container given `DATABASE_URL` needs it.",
        eval: rules::secrets::password_file,
    },
    // ----- Images -----
    Check {
        id: "IMG-001",
        section: Section::Images,
        severity: Severity::Medium,
        title: "Images are pinned: no `:latest`, no missing tag",
        why: "A moving tag means the running code depends on when each node pulled it: two pods of \
              one Deployment can run different code, and a rollback rolls back nothing.",
        fix: "Set `images.*.tag` to a version (`votectl images build` tags by content digest), or \
              pin `images.*.digest`.",
        eval: rules::images::pinned,
    },
    Check {
        id: "IMG-002",
        section: Section::Images,
        severity: Severity::Medium,
        title: "Local clusters never pull (`imagePullPolicy: Never`)",
        why: "On minikube and kind the images are built and loaded by `votectl up`; a pull would \
              fetch something else from a registry, or hang without a network.",
        fix: "Use the `minikube` or `kind` profile, which set `images.*.pullPolicy: Never`.",
        eval: rules::images::local_never_pulls,
    },
    Check {
        id: "IMG-003",
        section: Section::Images,
        severity: Severity::High,
        title: "Images and pull policies are the values' own",
        why: "The original chart ignored its values and ran hardcoded tags. Every container of a \
              workload must run exactly `images.<component>` (repository, tag, digest) with its \
              `pullPolicy`, and every workload must be one the values describe.",
        fix: "Render from the values (`votectl render`) rather than editing manifests, and set \
              `images.*` to what should run.",
        eval: rules::images::from_values,
    },
    // ----- Resources & probes -----
    Check {
        id: "RES-001",
        section: Section::ResourcesAndProbes,
        severity: Severity::Medium,
        title: "Every container has CPU and memory requests and limits",
        why: "Without requests the scheduler overcommits the node; without limits one runaway \
              container starves the others (or the node) of CPU and memory.",
        fix: "Set `<component>.resources.requests` and `.limits` (`cpu`, `memory`) in the values.",
        eval: rules::resources::requests_and_limits,
    },
    Check {
        id: "RES-002",
        section: Section::ResourcesAndProbes,
        severity: Severity::Medium,
        title: "Every container has startup, liveness and readiness probes",
        why: "Readiness keeps traffic away from a pod that cannot serve it (the API without Redis), \
              liveness restarts one that hangs, and startup gives slow starts (PostgreSQL's initdb) \
              time without weakening liveness.",
        fix: "Probe the real endpoints: `/health` for startup and liveness, `/ready` for readiness \
              (a TCP or exec probe for Redis and PostgreSQL).",
        eval: rules::resources::probes,
    },
    Check {
        id: "RES-003",
        section: Section::ResourcesAndProbes,
        severity: Severity::Low,
        title: "Every workload has a PodDisruptionBudget",
        why: "Without one a node drain may evict every replica at once.",
        fix: "Render a PodDisruptionBudget selecting the workload's pods (`maxUnavailable: 1`).",
        eval: rules::resources::disruption_budget,
    },
    // ----- Namespaces -----
    Check {
        id: "NS-001",
        section: Section::Namespaces,
        severity: Severity::High,
        title: "Pod Security Admission enforces `restricted` on every namespace",
        why: "The labels make the API server itself refuse any pod, from any source, that breaks \
              the restricted profile: the checks above stay true after `kubectl run` or a later \
              hand edit.",
        fix: "Label each namespace `pod-security.kubernetes.io/enforce`, `audit` and `warn` with \
              `restricted`.",
        eval: rules::namespaces::pod_security_admission,
    },
    Check {
        id: "NS-002",
        section: Section::Namespaces,
        severity: Severity::Low,
        title: "Each component runs in its own namespace, nothing outside them",
        why: "The NetworkPolicies and Pod Security labels are per namespace: a workload in another \
              namespace escapes both.",
        fix: "Render from the values (`namespacePrefix` moves all four namespaces together).",
        eval: rules::namespaces::placement,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn ids_are_unique_ordered_and_prefixed_by_section() {
        let ids: BTreeSet<&str> = CATALOGUE.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), CATALOGUE.len(), "duplicate ids");
        let mut last = None;
        for check in CATALOGUE {
            let (prefix, number) = check.id.split_once('-').expect("PREFIX-NNN");
            assert_eq!(prefix, check.section.prefix(), "{}", check.id);
            assert!(
                number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                check.id
            );
            let key = (check.section, check.id);
            assert!(last < Some(key), "{} is out of order", check.id);
            last = Some(key);
        }
        for section in Section::ALL {
            assert!(
                CATALOGUE.iter().any(|c| c.section == section),
                "{section} has no check"
            );
        }
        assert!(find("pod-001").is_some());
        assert!(find("POD-999").is_none());
    }
}
