//! Layering values the way Helm users know: the default profile, the chosen profile, each `-f` file in
//! order, then each `--set` in order.
//!
//! Invariants:
//! - the tree is validated against the typed schema after *each* layer is merged, so the first bad
//!   value is reported at the file, line and column of the layer that brought it;
//! - the profiles are embedded (`include_str!`): this module reads no file; callers pass file text in;
//! - a password in `postgresql.url` leaves the values here and is returned apart, with a warning for
//!   every layer that held one (or an error under `strict`).

use std::fmt;
use std::str::FromStr;

use vote_contract::settings::redact;

use crate::de::{did_you_mean, from_node};
use crate::error::{Error, Origin, Result, Warning};
use crate::tree::{Kind, Node, merge, parse_set, parse_yaml};
use crate::values::{Password, PostgresUrl, Values};

/// A built-in starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Any cluster: pull policy IfNotPresent, two replicas of the api and frontend, ClusterIP.
    #[default]
    Default,
    /// minikube: images loaded by `votectl up` (pull policy Never), NodePort frontend.
    Minikube,
    /// kind: images loaded by `votectl up` (pull policy Never), NodePort 30080 frontend.
    Kind,
}

const DEFAULT_YAML: &str = include_str!("../values/default.yaml");
const MINIKUBE_YAML: &str = include_str!("../values/minikube.yaml");
const KIND_YAML: &str = include_str!("../values/kind.yaml");

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Default, Profile::Minikube, Profile::Kind];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Minikube => "minikube",
            Profile::Kind => "kind",
        }
    }

    /// The profile's own values file: its name (as shown in errors) and text.
    pub fn file(self) -> (&'static str, &'static str) {
        match self {
            Profile::Default => ("values/default.yaml", DEFAULT_YAML),
            Profile::Minikube => ("values/minikube.yaml", MINIKUBE_YAML),
            Profile::Kind => ("values/kind.yaml", KIND_YAML),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
                let hint = did_you_mean(s, &names)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                format!("unknown profile `{s}`; one of {}{hint}", names.join(", "))
            })
    }
}

/// A values file given with `-f`: its name as the user wrote it, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesFile {
    pub name: String,
    pub text: String,
}

impl ValuesFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// What to layer.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    pub profile: Profile,
    /// `-f` files, in order.
    pub files: Vec<ValuesFile>,
    /// `--set` arguments, in order (`a.b=c`, several comma-separated).
    pub sets: Vec<String>,
    /// Refuse a password in `postgresql.url` instead of moving it into the Secret.
    pub strict: bool,
    /// The caller has the password from elsewhere (a password file): one in `postgresql.url` is
    /// dropped rather than moved into the Secret (and [`Loaded::postgres_password`] stays `None`).
    pub separate_password: bool,
}

/// Loaded values, and what was taken out of them.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub values: Values,
    /// The password that was in the final `postgresql.url`, if any: it belongs in the Secret only.
    pub postgres_password: Option<Password>,
    /// Problems worth fixing that did not stop loading; the caller prints them.
    pub warnings: Vec<Warning>,
}

const PG_URL: [&str; 2] = ["postgresql", "url"];

impl Layers {
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            ..Self::default()
        }
    }

    /// Layers, validates after each layer, and returns the final values.
    pub fn load(&self) -> Result<Loaded> {
        let (name, text) = Profile::Default.file();
        let mut tree = parse_yaml(name, text)?;
        if self.profile != Profile::Default {
            let (name, text) = self.profile.file();
            merge(&mut tree, parse_yaml(name, text)?);
        }
        let mut values: Values = from_node(&tree)?;

        let mut layers = Vec::with_capacity(self.files.len() + self.sets.len());
        for file in &self.files {
            layers.push(parse_yaml(&file.name, &file.text)?);
        }
        for set in &self.sets {
            layers.push(parse_set(set)?);
        }

        let mut with_password: Vec<Origin> = Vec::new();
        for layer in layers {
            if let Some((origin, url)) = password_in(&layer) {
                if self.strict {
                    return Err(Error::PasswordInValues {
                        origin,
                        path: PG_URL.join("."),
                        url,
                    });
                }
                with_password.push(origin);
            }
            merge(&mut tree, layer);
            values = from_node(&tree)?;
        }

        if let Some((path, message)) = values.check().into_iter().next() {
            let segments: Vec<&str> = path.split('.').collect();
            return Err(Error::Value {
                origin: tree.closest(&segments).origin.clone(),
                path,
                message,
            });
        }

        let mut warnings = Vec::new();
        let final_url = tree.lookup(&PG_URL).map(|n| n.origin.clone());
        let mut postgres_password = values.postgresql.url.take_password();
        if self.separate_password {
            postgres_password = None;
        }
        for origin in with_password {
            let fate = if self.separate_password {
                "it is ignored: the password given separately is used".to_owned()
            } else if Some(&origin) == final_url.as_ref() {
                format!(
                    "it was moved into the Secret `{}`",
                    values.postgresql.password_secret
                )
            } else {
                "a later layer replaces this URL, so it is not used".to_owned()
            };
            warnings.push(Warning {
                origin,
                path: PG_URL.join("."),
                message: format!(
                    "the URL holds a password; {fate}. Take the password out of the values file: \
                     keep it in the Secret (or pass it with --postgres-password-file)"
                ),
            });
        }
        if values.network_policies.enabled {
            for (path, host, in_cluster) in [
                (
                    "redis.url",
                    values.redis.url.host(),
                    values.redis.url.in_cluster(),
                ),
                (
                    "postgresql.url",
                    values.postgresql.url.host(),
                    values.postgresql.url.in_cluster(),
                ),
            ] {
                if !in_cluster {
                    let segments: Vec<&str> = path.split('.').collect();
                    warnings.push(Warning {
                        origin: tree.closest(&segments).origin.clone(),
                        path: path.to_owned(),
                        message: format!(
                            "`{host}` is outside the cluster, but the NetworkPolicies only allow \
                             the api and consumer to reach the in-cluster data stores; set \
                             networkPolicies.enabled=false or use the in-cluster one"
                        ),
                    });
                }
            }
        }

        Ok(Loaded {
            values,
            postgres_password,
            warnings,
        })
    }
}

/// The origin and redacted text of a `postgresql.url` in `layer` that holds a password.
fn password_in(layer: &Node) -> Option<(Origin, String)> {
    let node = layer.lookup(&PG_URL)?;
    let Kind::Scalar { text, .. } = &node.kind else {
        return None;
    };
    // A URL that does not parse is reported by the schema, with its location, right after the merge.
    let url = PostgresUrl::parse(text).ok()?;
    url.has_password()
        .then(|| (node.origin.clone(), redact(text)))
}

/// The values of a built-in profile alone.
pub(crate) fn profile_values(profile: Profile) -> Values {
    Layers::new(profile)
        .load()
        .expect("the embedded profiles are valid (tested)")
        .values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)], sets: &[&str]) -> Result<Loaded> {
        Layers {
            profile: Profile::Default,
            files: files.iter().map(|(n, t)| ValuesFile::new(*n, *t)).collect(),
            sets: sets.iter().map(|s| (*s).to_owned()).collect(),
            ..Layers::default()
        }
        .load()
    }

    #[test]
    fn every_profile_loads() {
        for profile in Profile::ALL {
            let loaded = Layers::new(profile).load().unwrap();
            assert!(
                loaded.warnings.is_empty(),
                "{profile}: {:?}",
                loaded.warnings
            );
            assert!(loaded.postgres_password.is_none());
            assert_eq!(profile.name().parse::<Profile>().unwrap(), profile);
        }
        assert!(
            "kinda"
                .parse::<Profile>()
                .unwrap_err()
                .contains("did you mean `kind`")
        );
    }

    #[test]
    fn the_default_tag_is_this_release() {
        let values = Values::default();
        for image in [
            &values.images.api,
            &values.images.consumer,
            &values.images.frontend,
        ] {
            assert_eq!(image.tag.as_str(), env!("CARGO_PKG_VERSION"));
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let loaded = load(
            &[
                (
                    "a.yaml",
                    "images:\n  api:\n    tag: one\napi:\n  replicas: 3\n",
                ),
                ("b.yaml", "images:\n  api:\n    tag: two\n"),
            ],
            &["images.api.tag=three", "api.replicas=4"],
        )
        .unwrap();
        assert_eq!(loaded.values.images.api.tag.as_str(), "three");
        assert_eq!(loaded.values.api.replicas, 4);
        let loaded = load(&[("a.yaml", "images: {api: {tag: one}}\n")], &[]).unwrap();
        assert_eq!(loaded.values.images.api.tag.as_str(), "one");
        assert_eq!(
            loaded.values.images.api.repository.as_str(),
            "votectl/api",
            "untouched keys keep the profile's value"
        );
    }

    #[test]
    fn errors_point_at_the_layer_that_brought_the_value() {
        let err = load(
            &[
                ("ok.yaml", "api:\n  replicas: 3\n"),
                ("bad.yaml", "images:\n  api:\n    tag: [x]\n"),
            ],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad.yaml:3:10: images.api.tag: expected a string, found a sequence"
        );
        let err = load(&[], &["api.replicas=many"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--set api.replicas=many: api.replicas: expected an integer from 0 to 65535, found `many`"
        );
        let err = load(&[], &["frontend.service.nodePort=30001"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--set frontend.service.nodePort=30001: frontend.service.nodePort: is set, but \
             frontend.service.type is not NodePort"
        );
        let err = load(&[], &["images.api.repository=null"]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "--set images.api.repository=null: images.api.repository: `repository` is set to null"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_password_in_the_url_moves_out_with_a_warning() {
        let helm = "postgresql:\n  url: postgresql://postgres:postgres@postgres:5432/votes\n";
        let loaded = load(&[("old.yaml", helm)], &[]).unwrap();
        assert_eq!(loaded.postgres_password.unwrap().expose(), "postgres");
        assert_eq!(
            loaded.values.postgresql.url.to_string(),
            "postgresql://postgres@postgres:5432/votes"
        );
        let [warning] = loaded.warnings.as_slice() else {
            panic!("{:?}", loaded.warnings)
        };
        assert_eq!(warning.origin.to_string(), "old.yaml:2:8");
        assert!(
            warning
                .message
                .contains("moved into the Secret `postgres-password`")
        );
        assert!(!warning.to_string().contains(":postgres@"), "{warning}");

        let overridden = load(
            &[("old.yaml", helm)],
            &["postgresql.url=postgres://app@postgres/votes"],
        )
        .unwrap();
        assert!(overridden.postgres_password.is_none());
        assert!(overridden.warnings[0].message.contains("not used"));

        let separate = Layers {
            files: vec![ValuesFile::new("old.yaml", helm)],
            separate_password: true,
            ..Layers::default()
        }
        .load()
        .unwrap();
        assert!(separate.postgres_password.is_none());
        assert!(separate.warnings[0].message.contains("ignored"));

        let strict = Layers {
            files: vec![ValuesFile::new("old.yaml", helm)],
            strict: true,
            ..Layers::default()
        }
        .load()
        .unwrap_err();
        assert_eq!(strict.origin().unwrap().to_string(), "old.yaml:2:8");
        assert!(strict.to_string().contains("strict"), "{strict}");
        assert!(!strict.to_string().contains(":postgres@"), "{strict}");
    }

    #[test]
    fn outside_data_stores_warn_when_policies_are_on() {
        let loaded = load(&[], &["redis.url=redis://cache.example.com:6379"]).unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].path, "redis.url");
        let loaded = load(
            &[],
            &["redis.url=redis://cache.example.com:6379,networkPolicies.enabled=false"],
        )
        .unwrap();
        assert!(loaded.warnings.is_empty());
    }
}
