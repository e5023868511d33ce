//! Loading built images into a local cluster with the cluster's own loader.
//!
//! `auto` decides from the kube context name the way Skaffold does: `minikube` -> minikube (profile
//! `minikube`), `kind-<name>` -> kind cluster `<name>`, `k3d-<name>` -> k3d cluster `<name>`. The
//! current context is read from the kubeconfig files (`KUBECONFIG`, else `~/.kube/config`) as plain
//! YAML: no cluster is contacted. Any other context is an error asking for `--into`.
//!
//! Invariant: a loader that is not installed is one line naming it, before anything is loaded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::{Error, Result};

/// What `--into` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Into {
    /// Decide from the kube context name.
    Auto,
    /// `minikube image load -p <profile>`.
    Minikube,
    /// `kind load image-archive --name <cluster>`.
    Kind,
    /// `k3d image import -c <cluster>`.
    K3d,
    /// `podman load -i` into the local store.
    Podman,
}

/// A loader and the cluster it loads into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loader {
    Minikube { profile: String },
    Kind { cluster: String },
    K3d { cluster: String },
    Podman,
}

impl Loader {
    /// The executable it runs.
    pub fn tool(&self) -> &'static str {
        match self {
            Loader::Minikube { .. } => "minikube",
            Loader::Kind { .. } => "kind",
            Loader::K3d { .. } => "k3d",
            Loader::Podman => "podman",
        }
    }

    /// Arguments after the tool name that load `archive`.
    pub fn args(&self, archive: &Path) -> Vec<String> {
        let archive = archive.display().to_string();
        match self {
            Loader::Minikube { profile } => {
                vec![
                    "image".into(),
                    "load".into(),
                    archive,
                    "-p".into(),
                    profile.clone(),
                ]
            }
            Loader::Kind { cluster } => vec![
                "load".into(),
                "image-archive".into(),
                archive,
                "--name".into(),
                cluster.clone(),
            ],
            Loader::K3d { cluster } => {
                vec![
                    "image".into(),
                    "import".into(),
                    archive,
                    "-c".into(),
                    cluster.clone(),
                ]
            }
            Loader::Podman => vec!["load".into(), "-i".into(), archive],
        }
    }

    /// `kind cluster "dev"`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Loader::Minikube { profile } => format!("minikube profile `{profile}`"),
            Loader::Kind { cluster } => format!("kind cluster `{cluster}`"),
            Loader::K3d { cluster } => format!("k3d cluster `{cluster}`"),
            Loader::Podman => "podman's local image store".to_owned(),
        }
    }

    /// Checks that the tool runs at all (`<tool> version`), so a missing loader is reported before any
    /// image is loaded.
    pub fn check_installed(&self) -> Result<()> {
        let tool = self.tool();
        let arg = if matches!(self, Loader::Podman) {
            "--version"
        } else {
            "version"
        };
        match Command::new(tool)
            .arg(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.missing()),
            Err(e) => Err(Error::ToolMissing {
                tool: tool.to_owned(),
                why: format!("cannot run it: {e}"),
            }),
        }
    }

    fn missing(&self) -> Error {
        Error::ToolMissing {
            tool: self.tool().to_owned(),
            why: format!("install it to load images into {}", self.describe()),
        }
    }

    /// Loads one archive; the tool's output goes to our stderr.
    pub fn load(&self, archive: &Path) -> Result<()> {
        let args = self.args(archive);
        let status = Command::new(self.tool())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    self.missing()
                } else {
                    Error::ToolMissing {
                        tool: self.tool().to_owned(),
                        why: format!("cannot run it: {e}"),
                    }
                }
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::ToolFailed {
                command: format!("{} {}", self.tool(), args.join(" ")),
                status: status.to_string(),
                detail: String::new(),
            })
        }
    }
}

/// The loader a kube context name implies, if any.
pub fn loader_for_context(context: &str) -> Option<Loader> {
    if context == "minikube" {
        return Some(Loader::Minikube {
            profile: context.to_owned(),
        });
    }
    if let Some(cluster) = context.strip_prefix("kind-").filter(|c| !c.is_empty()) {
        return Some(Loader::Kind {
            cluster: cluster.to_owned(),
        });
    }
    if let Some(cluster) = context.strip_prefix("k3d-").filter(|c| !c.is_empty()) {
        return Some(Loader::K3d {
            cluster: cluster.to_owned(),
        });
    }
    None
}

/// Picks the loader for `--into`, taking cluster names from the context (explicit `--context`, else the
/// kubeconfig's current context) where it names one of that kind, else the tool's default cluster.
pub fn resolve(into: Into, context: Option<&str>) -> Result<Loader> {
    let from_context = context.and_then(loader_for_context);
    Ok(match into {
        Into::Podman => Loader::Podman,
        Into::Auto => match (context, from_context) {
            (_, Some(loader)) => loader,
            (Some(context), None) => {
                return Err(Error::Usage(format!(
                    "kube context `{context}` is not a minikube, kind-* or k3d-* cluster: \
                     pick a loader with --into minikube|kind|k3d|podman"
                )));
            }
            (None, None) => {
                return Err(Error::Usage(
                    "no kube context is set (KUBECONFIG or ~/.kube/config): \
                     pass --context or --into minikube|kind|k3d|podman"
                        .to_owned(),
                ));
            }
        },
        Into::Minikube => match (from_context, context) {
            (Some(loader @ Loader::Minikube { .. }), _) => loader,
            // A minikube profile is also its context name.
            (None, Some(context)) => Loader::Minikube {
                profile: context.to_owned(),
            },
            _ => Loader::Minikube {
                profile: "minikube".to_owned(),
            },
        },
        Into::Kind => match from_context {
            Some(loader @ Loader::Kind { .. }) => loader,
            _ => Loader::Kind {
                cluster: "kind".to_owned(),
            },
        },
        Into::K3d => match from_context {
            Some(loader @ Loader::K3d { .. }) => loader,
            _ => Loader::K3d {
                cluster: "k3s-default".to_owned(),
            },
        },
    })
}

/// Kubeconfig files in kubectl's order: the entries of `KUBECONFIG` (colon-separated), else
/// `~/.kube/config`.
pub fn kubeconfig_paths(kubeconfig: Option<&str>, home: Option<&Path>) -> Vec<PathBuf> {
    match kubeconfig.filter(|k| !k.is_empty()) {
        Some(list) => std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => home
            .map(|h| vec![h.join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

/// The current context: the first `current-context` set in `paths` (kubectl's merge rule: the first
/// file to set a value wins). Missing files are skipped; unreadable or invalid ones are errors.
pub fn current_context(paths: &[PathBuf]) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct KubeConfig {
        #[serde(rename = "current-context", default)]
        current_context: Option<String>,
    }
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(Error::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let config: KubeConfig = serde_saphyr::from_str(&text).map_err(|e| Error::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if let Some(context) = config.current_context.filter(|c| !c.is_empty()) {
            return Ok(Some(context));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_context_name() {
        assert_eq!(
            resolve(Into::Auto, Some("minikube")).unwrap(),
            Loader::Minikube {
                profile: "minikube".into()
            }
        );
        assert_eq!(
            resolve(Into::Auto, Some("kind-dev")).unwrap(),
            Loader::Kind {
                cluster: "dev".into()
            }
        );
        assert_eq!(
            resolve(Into::Auto, Some("k3d-votes")).unwrap(),
            Loader::K3d {
                cluster: "votes".into()
            }
        );
        let err = resolve(Into::Auto, Some("prod-eu"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prod-eu") && err.contains("--into"), "{err}");
        assert!(resolve(Into::Auto, Some("kind-")).is_err());
        assert!(resolve(Into::Auto, None).is_err());
    }

    #[test]
    fn explicit_loaders_take_the_cluster_from_a_matching_context() {
        assert_eq!(
            resolve(Into::Kind, Some("kind-a")).unwrap(),
            Loader::Kind {
                cluster: "a".into()
            }
        );
        assert_eq!(
            resolve(Into::Kind, Some("minikube")).unwrap(),
            Loader::Kind {
                cluster: "kind".into()
            }
        );
        assert_eq!(
            resolve(Into::K3d, None).unwrap(),
            Loader::K3d {
                cluster: "k3s-default".into()
            }
        );
        assert_eq!(
            resolve(Into::Minikube, Some("dev")).unwrap(),
            Loader::Minikube {
                profile: "dev".into()
            }
        );
        assert_eq!(
            resolve(Into::Podman, Some("kind-a")).unwrap(),
            Loader::Podman
        );
    }

    #[test]
    fn each_loader_uses_its_own_command() {
        let archive = Path::new("/x/api.tar");
        let line = |l: Loader| format!("{} {}", l.tool(), l.args(archive).join(" "));
        assert_eq!(
            line(Loader::Kind {
                cluster: "dev".into()
            }),
            "kind load image-archive /x/api.tar --name dev"
        );
        assert_eq!(
            line(Loader::K3d {
                cluster: "dev".into()
            }),
            "k3d image import /x/api.tar -c dev"
        );
        assert_eq!(
            line(Loader::Minikube {
                profile: "minikube".into()
            }),
            "minikube image load /x/api.tar -p minikube"
        );
        assert_eq!(line(Loader::Podman), "podman load -i /x/api.tar");
    }

    #[test]
    fn current_context_comes_from_the_first_file_that_sets_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "apiVersion: v1\nkind: Config\nclusters: []\n").unwrap();
        std::fs::write(
            &b,
            "apiVersion: v1\nkind: Config\ncurrent-context: kind-dev\ncontexts:\n- name: kind-dev\n  context: {cluster: kind-dev, user: u}\n",
        )
        .unwrap();
        let missing = dir.path().join("missing");
        let joined = std::env::join_paths([&missing, &a, &b]).unwrap();
        let paths = kubeconfig_paths(joined.to_str(), None);
        assert_eq!(paths.len(), 3);
        assert_eq!(
            current_context(&paths).unwrap().as_deref(),
            Some("kind-dev")
        );
        assert_eq!(
            kubeconfig_paths(None, Some(Path::new("/home/u"))),
            [PathBuf::from("/home/u/.kube/config")]
        );
        std::fs::write(&a, "current-context: [unclosed\n").unwrap();
        let err = current_context(&paths).unwrap_err().to_string();
        assert!(err.contains(&a.display().to_string()), "{err}");
    }
}
