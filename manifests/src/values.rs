//! The typed values schema: what a user may set, with the rules each value must follow.
//!
//! Invariants:
//! - every value is validated when it is read, so a `Values` that exists is renderable; a rule that
//!   spans several keys lives in [`Values::check`], which names the key it blames;
//! - the defaults live in one place, `values/default.yaml` (embedded), which sets every key: the schema
//!   has no hidden defaults, and [`Values::default`] is that file;
//! - a `Values` never holds a password: one found in `postgresql.url` is taken out while loading
//!   (see [`crate::load`]) and travels separately as a [`Password`].
//!
//! Keys of the original Helm chart keep their names and meaning: `images.{api,consumer,frontend}.
//! {repository,tag,pullPolicy}`, `redis.url`, `postgresql.url`, `networkPolicies.enabled`,
//! `api.corsOrigins`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vote_contract::VoteOptions;
use vote_contract::settings::{self, Env, redact, var};

/// All values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Values {
    /// Prepended to each namespace name (`alice-` gives `alice-voting-api`), so that two installs can
    /// share a cluster.
    pub namespace_prefix: NamespacePrefix,
    /// The cluster's DNS domain, for the services' addresses (`api.voting-api.svc.<domain>`).
    pub cluster_domain: DnsSubdomain,
    /// The vote options offered (`VOTE_OPTIONS`): a list, or the comma-separated form.
    #[serde(
        deserialize_with = "vote_options_from_list_or_string",
        serialize_with = "vote_options_as_list"
    )]
    pub vote_options: VoteOptions,
    /// Log filter of our services (`LOG_LEVEL`), such as `info` or `info,vote_api=debug`.
    pub log_level: LogLevel,
    /// Extra labels put on every object (for cost centres, owners, …).
    pub common_labels: BTreeMap<LabelKey, LabelValue>,
    pub images: Images,
    pub api: Api,
    pub consumer: Consumer,
    pub frontend: Frontend,
    pub redis: Redis,
    pub postgresql: Postgresql,
    pub network_policies: NetworkPolicies,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    pub api: Image,
    pub consumer: Image,
    pub frontend: Image,
    pub redis: Image,
    pub postgres: Image,
}

/// A container image and how the kubelet gets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    /// `[registry[:port]/]path`, e.g. `registry.example.com:5000/team/vote-api`.
    pub repository: ImageRepository,
    pub tag: ImageTag,
    /// `sha256:…`: when set, the image is pinned to this digest (the tag stays for readers).
    pub digest: Option<ImageDigest>,
    pub pull_policy: PullPolicy,
}

impl Image {
    /// The reference a pod spec uses: `repository:tag` or `repository:tag@digest`.
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(digest) => format!("{}:{}@{}", self.repository, self.tag, digest),
            None => format!("{}:{}", self.repository, self.tag),
        }
    }
}

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Api {
    pub replicas: u16,
    /// Origins allowed by CORS (`CORS_ORIGINS`): a list, or the comma-separated form; never `*`.
    pub cors_origins: CorsOrigins,
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Consumer {
    pub replicas: u16,
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Frontend {
    pub replicas: u16,
    pub service: FrontendService,
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FrontendService {
    #[serde(rename = "type")]
    pub type_: ServiceType,
    /// With `type: NodePort`: the port on every node (30000–32767), or null for one the cluster picks.
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Redis {
    /// Where the api and consumer find Redis. A host without a dot (`redis`, as the Helm chart had)
    /// means the in-cluster StatefulSet.
    pub url: RedisUrl,
    pub persistence: Persistence,
    pub security_context: ImageUser,
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Postgresql {
    /// Where the api and consumer find PostgreSQL, *without* a password. The user and database also
    /// configure the in-cluster server. A host without a dot (`postgres`) means the in-cluster one.
    pub url: PostgresUrl,
    /// Name of the Secret (key `password`) holding the password, in the api, consumer and data
    /// namespaces.
    pub password_secret: K8sName,
    pub persistence: Persistence,
    pub security_context: ImageUser,
    pub resources: Resources,
}

/// A PersistentVolumeClaim's size and class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Persistence {
    pub size: Quantity,
    /// null: the cluster's default StorageClass.
    pub storage_class: Option<DnsSubdomain>,
}

/// The non-root user a third-party image runs as; the pod's `runAsUser`, `runAsGroup` and `fsGroup`
/// must equal it (the official redis and postgres Debian images: 999:999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageUser {
    pub run_as_user: NonRootId,
    pub run_as_group: NonRootId,
    pub fs_group: NonRootId,
}

/// Requests and limits of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub requests: ResourceList,
    pub limits: ResourceList,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    pub cpu: Quantity,
    pub memory: Quantity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicies {
    /// Render the default-deny policies and the allow rules for the intended flows.
    pub enabled: bool,
    /// Allow ingress to the frontend only from this namespace (an ingress controller's); null: from
    /// anywhere.
    pub ingress_namespace: Option<K8sName>,
    /// Where the cluster DNS runs (egress on port 53 is allowed there).
    pub dns_namespace: K8sName,
}

impl Default for Values {
    /// The default profile (`values/default.yaml`).
    fn default() -> Self {
        crate::load::profile_values(crate::Profile::Default)
    }
}

impl Values {
    /// Rules that span several keys: `(key path, problem)` for each one broken.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let service = &self.frontend.service;
        if let Some(port) = service.node_port {
            if service.type_ != ServiceType::NodePort {
                problems.push((
                    "frontend.service.nodePort".to_owned(),
                    "is set, but frontend.service.type is not NodePort".to_owned(),
                ));
            } else if !(30000..=32767).contains(&port) {
                problems.push((
                    "frontend.service.nodePort".to_owned(),
                    format!("{port} is outside the NodePort range 30000-32767"),
                ));
            }
        }
        for (path, resources) in [
            ("api.resources", &self.api.resources),
            ("consumer.resources", &self.consumer.resources),
            ("frontend.resources", &self.frontend.resources),
            ("redis.resources", &self.redis.resources),
            ("postgresql.resources", &self.postgresql.resources),
        ] {
            for (name, request, limit) in [
                ("cpu", &resources.requests.cpu, &resources.limits.cpu),
                (
                    "memory",
                    &resources.requests.memory,
                    &resources.limits.memory,
                ),
            ] {
                if let (Some(r), Some(l)) = (request.approx(), limit.approx())
                    && r > l
                {
                    problems.push((
                        format!("{path}.requests.{name}"),
                        format!("{request} is more than the limit {limit}"),
                    ));
                }
            }
        }
        if let Some(port) = self.redis.url.port
            && self.redis.url.in_cluster()
            && port != settings::port::REDIS
        {
            problems.push((
                "redis.url".to_owned(),
                format!(
                    "the in-cluster Redis listens on {}, not {port}",
                    settings::port::REDIS
                ),
            ));
        }
        if let Some(port) = self.postgresql.url.port
            && self.postgresql.url.in_cluster()
            && port != settings::port::POSTGRES
        {
            problems.push((
                "postgresql.url".to_owned(),
                format!(
                    "the in-cluster PostgreSQL listens on {}, not {port}",
                    settings::port::POSTGRES
                ),
            ));
        }
        problems
    }
}

// ----- Validated scalars -----------------------------------------------------------------------

/// Implements `Display`, `AsRef<str>`, `TryFrom<String>` (through `$validate`) and serde for a
/// validated string newtype.
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $validate:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                let validate: fn(&str) -> Result<(), String> = $validate;
                validate(&value)?;
                Ok(Self(value))
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(value: &str) -> Result<Self, String> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

validated_string!(
    /// `""` or a prefix such that `<prefix>voting-consumer` is a valid namespace name.
    NamespacePrefix,
    |s| {
        let longest = format!("{s}voting-consumer");
        if is_dns_label(&longest) {
            Ok(())
        } else {
            Err(format!(
                "`{s}` cannot start a namespace name: use lowercase letters, digits and '-', \
                 starting with a letter or digit, at most {} characters",
                63 - "voting-consumer".len()
            ))
        }
    }
);

validated_string!(
    /// An image repository: `[registry[:port]/]path/components`, lowercase.
    ImageRepository,
    validate_repository
);

validated_string!(
    /// An image tag: up to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
    ImageTag,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 128
            && !s.starts_with(['.', '-'])
            && s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not an image tag (1-128 of A-Z a-z 0-9 _ . -, not starting with . or -)"
            ))
        }
    }
);

validated_string!(
    /// An image digest: `sha256:` and 64 lowercase hex digits (or `sha512:` and 128).
    ImageDigest,
    |s| {
        let ok = match s.split_once(':') {
            Some(("sha256", hex)) => hex.len() == 64,
            Some(("sha512", hex)) => hex.len() == 128,
            _ => false,
        } && s
            .split_once(':')
            .is_some_and(|(_, hex)| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if ok {
            Ok(())
        } else {
            Err(format!("`{s}` is not a digest like sha256:<64 hex digits>"))
        }
    }
);

validated_string!(
    /// A Kubernetes object name of the DNS-label kind (namespaces, Secrets, …).
    K8sName,
    |s| {
        if is_dns_label(s) {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not a valid name (lowercase letters, digits and '-', at most 63, \
                 starting and ending with a letter or digit)"
            ))
        }
    }
);

validated_string!(
    /// A DNS subdomain (StorageClass names).
    DnsSubdomain,
    |s| {
        if s.len() <= 253 && s.split('.').all(is_dns_label) {
            Ok(())
        } else {
            Err(format!("`{s}` is not a valid DNS subdomain name"))
        }
    }
);

validated_string!(
    /// A resource quantity such as `250m`, `128Mi`, `1.5`, `2Gi`.
    Quantity,
    |s| {
        if parse_quantity(s).is_some() {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not a quantity (a number with an optional suffix: m, k, M, G, Ki, Mi, Gi, …)"
            ))
        }
    }
);

impl Quantity {
    /// The value as a number, for comparing a request with a limit.
    pub fn approx(&self) -> Option<f64> {
        parse_quantity(&self.0)
    }
}

validated_string!(
    /// A `tracing` filter (`LOG_LEVEL`), checked with the parser the services use, so a typo is a
    /// render error rather than pods that crash at start.
    LogLevel,
    |s| {
        if s.trim().is_empty() || s.chars().any(char::is_control) {
            return Err(format!("`{s}` is not a log filter (like info or info,vote_api=debug)"));
        }
        tracing_subscriber::EnvFilter::try_new(s)
            .map(drop)
            .map_err(|e| format!("`{s}` is not a log filter (like info or info,vote_api=debug): {e}"))
    }
);

validated_string!(
    /// A label key: `[prefix/]name`.
    LabelKey,
    |s| {
        let (prefix, name) = s.rsplit_once('/').map_or((None, s), |(p, n)| (Some(p), n));
        let prefix_ok = prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(is_dns_label));
        if prefix_ok && is_label_value(name) && !name.is_empty() {
            Ok(())
        } else {
            Err(format!("`{s}` is not a label key ([prefix/]name, name up to 63 of A-Z a-z 0-9 - _ .)"))
        }
    }
);

validated_string!(
    /// A label value: up to 63 of `[A-Za-z0-9-_.]`, starting and ending alphanumeric (or empty).
    LabelValue,
    |s| {
        if is_label_value(s) {
            Ok(())
        } else {
            Err(format!("`{s}` is not a label value (up to 63 of A-Z a-z 0-9 - _ ., alphanumeric at both ends)"))
        }
    }
);

/// A UID or GID other than root's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct NonRootId(u32);

impl NonRootId {
    pub fn new(id: u32) -> Result<Self, String> {
        Self::try_from(i64::from(id))
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for NonRootId {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        match u32::try_from(value) {
            Ok(0) => Err("0 is root; the pod must run as the image's non-root user".to_owned()),
            Ok(id) if id < i32::MAX as u32 => Ok(Self(id)),
            _ => Err(format!(
                "{value} is not a user or group id (1 to 2147483646)"
            )),
        }
    }
}

impl From<NonRootId> for i64 {
    fn from(value: NonRootId) -> i64 {
        i64::from(value.0)
    }
}

/// `api.corsOrigins`: each `scheme://host[:port]`, never `*` (the services' own rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsOrigins(Vec<String>);

impl CorsOrigins {
    pub fn new(origins: Vec<String>) -> Result<Self, String> {
        let joined = origins.join(",");
        let env = Env::from_pairs([(var::CORS_ORIGINS, joined.as_str())]);
        // An empty list is allowed (same-origin only), but the services read an unset variable as
        // "use the defaults", so the variable is then left out rather than set empty.
        if joined.trim().is_empty() {
            return Ok(Self(Vec::new()));
        }
        env.origins(var::CORS_ORIGINS, "")
            .map(Self)
            .map_err(|e| e.reason)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The `CORS_ORIGINS` form.
    pub fn joined(&self) -> String {
        self.0.join(",")
    }
}

impl Serialize for CorsOrigins {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CorsOrigins {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = ListOrCommaString::deserialize(deserializer)?;
        CorsOrigins::new(list.0).map_err(serde::de::Error::custom)
    }
}

fn vote_options_from_list_or_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<VoteOptions, D::Error> {
    let list = ListOrCommaString::deserialize(deserializer)?;
    list.0
        .join(",")
        .parse::<VoteOptions>()
        .map_err(serde::de::Error::custom)
}

fn vote_options_as_list<S: Serializer>(
    options: &VoteOptions,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    options.names().serialize(serializer)
}

/// A list of strings written either as a YAML list or as `a,b,c`.
struct ListOrCommaString(Vec<String>);

impl<'de> Deserialize<'de> for ListOrCommaString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ListOrCommaString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings or a comma-separated string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ListOrCommaString(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(ListOrCommaString(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}

// ----- URLs and the password -------------------------------------------------------------------

/// A password, kept out of `Debug` output and of every rendered object but the Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Refuses an empty password and one with a line break (it is stored in a file the services read
    /// up to the end of the first line).
    pub fn new(password: impl Into<String>) -> Result<Self, String> {
        let password = password.into();
        if password.is_empty() {
            return Err("the password is empty".to_owned());
        }
        if password.contains(['\n', '\r']) {
            return Err("the password holds a line break".to_owned());
        }
        Ok(Self(password))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The parts of a `scheme://[user[:password]@]host[:port][/path][?query]` URL we need.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlParts {
    scheme: String,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

fn split_url(url: &str) -> Result<UrlParts, String> {
    let shown = redact(url);
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{shown}` is not a URL (scheme://host…)"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q.to_owned())),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, String::new()),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, password)) => {
                (Some(percent_decode(user)?), Some(percent_decode(password)?))
            }
            None => (Some(percent_decode(u)?), None),
        },
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        // [IPv6]:port
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("`{shown}`: unclosed `[` in the host"))?;
        let port = after.strip_prefix(':');
        (format!("[{host}]"), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{shown}`: `{p}` is not a port"))
        })
        .transpose()?;
    if host.is_empty() {
        return Err(format!("`{shown}` has no host"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':'))
    {
        return Err(format!("`{shown}`: `{host}` is not a host name"));
    }
    Ok(UrlParts {
        scheme: scheme.to_owned(),
        user: user.filter(|u| !u.is_empty()),
        password,
        host,
        port,
        path,
        query,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a `%` in the URL's user or password is not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL's user or password is not UTF-8".to_owned())
}

fn percent_encode_user(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Is `host` the in-cluster data store? A name without a dot (the Helm chart's `redis`, `postgres`)
/// cannot be resolved across namespaces, so it means ours.
fn is_in_cluster_host(host: &str) -> bool {
    !host.contains('.') && !host.starts_with('[')
}

/// `redis.url`: `redis://host[:port][/db]`. No password: the in-cluster Redis has none, and a URL in
/// a Deployment's environment is readable by anyone who can read the Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    scheme: String,
    host: String,
    pub port: Option<u16>,
    path: String,
}

impl RedisUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let parts = split_url(url)?;
        if !matches!(parts.scheme.as_str(), "redis" | "rediss") {
            return Err(format!(
                "`{}` is not a Redis URL (redis://host:port)",
                redact(url)
            ));
        }
        if parts.password.is_some() || parts.user.is_some() {
            return Err(format!(
                "`{}` holds credentials; the in-cluster Redis has no password, and a URL in a \
                 Deployment would expose them: remove them",
                redact(url)
            ));
        }
        if parts.query.is_some() {
            return Err(format!("`{url}`: query parameters are not supported"));
        }
        let env = Env::from_pairs([(var::REDIS_URL, url)]);
        env.redis_url().map_err(|e| e.reason)?;
        Ok(Self {
            scheme: parts.scheme,
            host: parts.host,
            port: parts.port,
            path: parts.path,
        })
    }

    /// Whether this names the in-cluster Redis: a host without a dot (like the Helm chart's `redis`)
    /// cannot be resolved across namespaces, so it means ours.
    pub fn in_cluster(&self) -> bool {
        is_in_cluster_host(&self.host)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL with the host replaced (by the in-cluster service's DNS name).
    pub fn with_host(&self, host: &str) -> String {
        let port = self.port.unwrap_or(settings::port::REDIS);
        format!("{}://{host}:{port}{}", self.scheme, self.path)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}://{}:{port}{}", self.scheme, self.host, self.path),
            None => write!(f, "{}://{}{}", self.scheme, self.host, self.path),
        }
    }
}

impl Serialize for RedisUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = String::deserialize(deserializer)?;
        RedisUrl::parse(&url).map_err(serde::de::Error::custom)
    }
}

/// `postgresql.url`: `postgres[ql]://user[:password]@host[:port]/database[?params]`.
///
/// A password in it (as the Helm chart's values had) is held apart in [`Self::take_password`]'s
/// slot: it never appears in `Display`, `Debug`, serialization or a rendered object but the Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    scheme: String,
    user: String,
    password: Option<Password>,
    host: String,
    pub port: Option<u16>,
    database: String,
    query: Option<String>,
}

impl PostgresUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let parts = split_url(url)?;
        if !matches!(parts.scheme.as_str(), "postgres" | "postgresql") {
            return Err(format!(
                "`{}` is not a PostgreSQL URL (postgres://user@host:port/database)",
                redact(url)
            ));
        }
        let user = parts.user.ok_or_else(|| {
            format!(
                "`{}` names no user (postgres://USER@host/database)",
                redact(url)
            )
        })?;
        let database = parts.path.trim_start_matches('/').to_owned();
        if database.is_empty() || database.contains('/') {
            return Err(format!(
                "`{}` names no database (postgres://user@host/DATABASE)",
                redact(url)
            ));
        }
        let password = parts
            .password
            .filter(|p| !p.is_empty())
            .map(Password::new)
            .transpose()
            .map_err(|e| format!("`{}`: {e}", redact(url)))?;
        let parsed = Self {
            scheme: parts.scheme,
            user,
            password,
            host: parts.host,
            port: parts.port,
            database,
            query: parts.query,
        };
        // The services' own parser must accept it too.
        let env = Env::from_pairs([(var::DATABASE_URL, parsed.to_string())]);
        env.postgres_config().map_err(|e| e.reason)?;
        Ok(parsed)
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Takes the password out of the URL.
    pub fn take_password(&mut self) -> Option<Password> {
        self.password.take()
    }

    /// Whether this names the in-cluster PostgreSQL: a host without a dot (like the Helm chart's
    /// `postgres`) cannot be resolved across namespaces, so it means ours.
    pub fn in_cluster(&self) -> bool {
        is_in_cluster_host(&self.host)
    }

    /// The URL, without a password, with the host replaced (by the in-cluster service's DNS name).
    pub fn with_host(&self, host: &str) -> String {
        let port = self.port.unwrap_or(settings::port::POSTGRES);
        let mut url = format!(
            "{}://{}@{host}:{port}/{}",
            self.scheme,
            percent_encode_user(&self.user),
            self.database
        );
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

impl fmt::Display for PostgresUrl {
    /// Never shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}@{}",
            self.scheme,
            percent_encode_user(&self.user),
            self.host
        )?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "/{}", self.database)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({self})")
    }
}

impl Serialize for PostgresUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PostgresUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = String::deserialize(deserializer)?;
        PostgresUrl::parse(&url).map_err(serde::de::Error::custom)
    }
}

// ----- Grammar helpers -------------------------------------------------------------------------

/// RFC 1123 label: 1–63 of `[a-z0-9-]`, alphanumeric at both ends.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// The distribution spec's reference grammar, without tag or digest.
fn validate_repository(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{s}` is not an image repository: {why}"));
    if s.is_empty() || s.len() > 255 {
        return bad("it must be 1-255 characters");
    }
    let mut components: Vec<&str> = s.split('/').collect();
    let first = components[0];
    if components.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
        let (host, port) = match first.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (first, None),
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !host_ok || port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return bad("the registry part is not host[:port]");
        }
        components.remove(0);
    }
    for component in components {
        let ok = !component.is_empty()
            && component.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !component.contains("..")
            && !component.contains("___");
        if !ok {
            return bad(&format!(
                "path component `{component}` must be lowercase letters and digits, separated by . _ or -"
            ));
        }
    }
    Ok(())
}

/// A Kubernetes quantity as a float (approximate; only for comparisons).
fn parse_quantity(s: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 15] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| s.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((s, 1.0));
    let (mantissa, exponent) = match number.split_once(['e', 'E']) {
        Some((m, e)) if factor == 1.0 => (m, Some(e)),
        _ => (number, None),
    };
    let digits = mantissa.strip_prefix('+').unwrap_or(mantissa);
    let valid_mantissa = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit());
    if !valid_mantissa {
        return None;
    }
    let exponent: i32 = match exponent {
        Some(e) => {
            let e_digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if e_digits.is_empty() || !e_digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            e.parse().ok()?
        }
        None => 0,
    };
    let value: f64 = digits.parse().ok()?;
    Some(value * factor * 10f64.powi(exponent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in ["1", "250m", "1.5", "128Mi", "2Gi", "1e3", "0.5Gi", "+1"] {
            assert!(parse_quantity(ok).is_some(), "{ok}");
        }
        for bad in ["", "1.2.3", "Mi", "-1", "1 Gi", "1gi", "1e", "abc"] {
            assert!(parse_quantity(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("1Ki"), Some(1024.0));
    }

    #[test]
    fn repositories() {
        for ok in [
            "redis",
            "docker.io/library/redis",
            "localhost/votectl/api",
            "registry.example.com:5000/team/vote-api",
            "ghcr.io/a_b/c__d/e.f",
            "localhost:5000/x",
        ] {
            assert!(validate_repository(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Redis",
            "a//b",
            "a/-b",
            "x:1.0",
            "a/b:tag",
            "reg.io:port/x",
            "a/b/",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn postgres_urls_keep_the_password_apart() {
        let mut url =
            PostgresUrl::parse("postgresql://postgres:p%40ss@postgres:5432/votes").unwrap();
        assert!(url.has_password());
        assert_eq!(url.to_string(), "postgresql://postgres@postgres:5432/votes");
        assert!(!format!("{url:?}").contains("p@ss"));
        assert_eq!(url.take_password().unwrap().expose(), "p@ss");
        assert_eq!(
            url.with_host("postgres.voting-data.svc.cluster.local"),
            "postgresql://postgres@postgres.voting-data.svc.cluster.local:5432/votes"
        );
        for bad in [
            "mysql://u@h/db",
            "postgres://h/db",
            "postgres://u@h",
            "postgres://u@h:99999/db",
            "postgres://u@/db",
        ] {
            let err = PostgresUrl::parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        let err = PostgresUrl::parse("postgres://u:secret@h:x/db").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn redis_urls_refuse_credentials() {
        let url = RedisUrl::parse("redis://redis:6379").unwrap();
        assert!(url.in_cluster());
        assert_eq!(url.with_host("redis.x.svc"), "redis://redis.x.svc:6379");
        let err = RedisUrl::parse("redis://:hunter2@redis:6379").unwrap_err();
        assert!(
            err.contains("credentials") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(RedisUrl::parse("http://redis").is_err());
    }

    #[test]
    fn names_and_ids() {
        assert!(NamespacePrefix::from_str("").is_ok());
        assert!(NamespacePrefix::from_str("alice-").is_ok());
        assert!(NamespacePrefix::from_str("Alice-").is_err());
        assert!(NamespacePrefix::from_str("-a").is_err());
        assert!(NamespacePrefix::from_str(&"a".repeat(49)).is_err());
        assert!(NonRootId::try_from(0).is_err());
        assert!(NonRootId::try_from(-1).is_err());
        assert!(NonRootId::try_from(999).is_ok());
        assert!(LabelKey::from_str("example.com/team").is_ok());
        assert!(LabelKey::from_str("Bad Key").is_err());
        assert!(LabelValue::from_str("").is_ok());
        assert!(LabelValue::from_str("-x").is_err());
        assert!(ImageTag::from_str("1.10").is_ok());
        assert!(ImageTag::from_str("-x").is_err());
        assert!(ImageDigest::from_str(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(ImageDigest::from_str("sha256:abc").is_err());
        assert!(CorsOrigins::new(vec!["*".into()]).is_err());
        assert!(CorsOrigins::new(vec!["http://a:1".into()]).is_ok());
        assert!(LogLevel::from_str("info,vote_api=debug").is_ok());
        assert!(LogLevel::from_str("off").is_ok());
        assert!(LogLevel::from_str("info,vote_api=loud").is_err());
        assert!(LogLevel::from_str("").is_err());
    }
}
