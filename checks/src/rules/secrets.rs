//! Secrets: no credential in a pod spec, and the database password only as a read-only file.
//!
//! Findings never quote the credential they found.

use k8s_openapi::api::core::v1::{Container, Volume};
use vote_contract::settings::var;
use votectl_manifests::Component;

use crate::input::{Ctr, Input, Pod};
use crate::report::Finding;

/// The variable the official PostgreSQL image reads its password file from.
const POSTGRES_PASSWORD_FILE: &str = "POSTGRES_PASSWORD_FILE";

/// Whether a `scheme://user:password@host` URL with a non-empty password occurs in `s`.
pub(crate) fn has_url_password(s: &str) -> bool {
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo
                .split_once(':')
                .is_some_and(|(_, pw)| !pw.is_empty())
        {
            return true;
        }
        rest = &after[end..];
    }
    false
}

/// Whether a variable or flag name says it holds a credential.
pub(crate) fn is_credential_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    const WORDS: [&str; 10] = [
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "REQUIREPASS",
        "MASTERAUTH",
        "SECRET",
        "TOKEN",
        "CREDENTIAL",
        "APIKEY",
        "API_KEY",
    ];
    // `PASS` and `PW` only as whole words (`--pass`, `DB_PW`): inside other words they mean
    // nothing (`PASSTHROUGH`, `PWD` is the working directory).
    WORDS.iter().any(|w| upper.contains(w))
        || upper.ends_with("_KEY")
        || upper == "KEY"
        || upper.split('_').any(|part| part == "PASS" || part == "PW")
}

/// A variable that names a file (`*_FILE`, `*_PATH`, `*_DIR`) holds a path, not the credential.
fn names_a_file(name: &str) -> bool {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    ["_FILE", "_PATH", "_DIR"]
        .iter()
        .any(|s| upper.ends_with(s))
}

/// Problems in a command line: URLs with passwords, and credential flags with a value
/// (`--password=x`, `--requirepass x`). Words inside an element (`sh -c "…"`) count too.
fn command_problems(words: &[String]) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (i, element) in words.iter().enumerate() {
        if has_url_password(element) {
            problems.push((
                i,
                "holds a password in a URL (user:password@host)".to_owned(),
            ));
            continue;
        }
        let tokens: Vec<&str> = element.split_whitespace().collect();
        let next_element = words.get(i + 1).map(String::as_str);
        for (j, token) in tokens.iter().enumerate() {
            let Some(flag) = token.strip_prefix("--").or_else(|| token.strip_prefix('-')) else {
                continue;
            };
            let (flag_name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (flag, None),
            };
            if !is_credential_name(flag_name) || names_a_file(flag_name) {
                continue;
            }
            let value = inline.or_else(|| match tokens.get(j + 1) {
                Some(t) => Some(*t),
                None if tokens.len() == 1 => next_element,
                None => None,
            });
            if value.is_some_and(|v| !v.is_empty() && !v.starts_with('-')) {
                problems.push((
                    i,
                    format!("passes a credential on the command line ({token})"),
                ));
            }
        }
    }
    problems
}

fn container_commands(c: &Container) -> Vec<(String, Vec<String>)> {
    let mut lists = Vec::new();
    if let Some(command) = &c.command {
        lists.push(("command".to_owned(), command.clone()));
    }
    if let Some(args) = &c.args {
        lists.push(("args".to_owned(), args.clone()));
    }
    for (field, probe) in [
        ("startupProbe", &c.startup_probe),
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
    ] {
        if let Some(command) = probe
            .as_ref()
            .and_then(|p| p.exec.as_ref())
            .and_then(|e| e.command.clone())
        {
            lists.push((format!("{field}.exec.command"), command));
        }
    }
    if let Some(lifecycle) = &c.lifecycle {
        for (field, handler) in [
            ("postStart", &lifecycle.post_start),
            ("preStop", &lifecycle.pre_stop),
        ] {
            if let Some(command) = handler
                .as_ref()
                .and_then(|h| h.exec.as_ref())
                .and_then(|e| e.command.clone())
            {
                lists.push((format!("lifecycle.{field}.exec.command"), command));
            }
        }
    }
    lists
}

pub(crate) fn no_credentials(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for ctr in pod.containers() {
            for e in ctr.container.env.iter().flatten() {
                let Some(value) = e.value.as_deref().filter(|v| !v.is_empty()) else {
                    continue;
                };
                let path = format!("{}.env[name={}].value", ctr.path, e.name);
                let problem = if has_url_password(value) {
                    Some("holds a password in a URL (user:password@host)")
                } else if is_credential_name(&e.name) {
                    if !names_a_file(&e.name) {
                        Some("looks like a credential and has a literal value")
                    } else if !value.starts_with('/') {
                        Some("should name a file, but its value is not an absolute path")
                    } else {
                        None
                    }
                } else {
                    None
                };
                if let Some(problem) = problem {
                    findings.push(Finding::on(pod.object, path, problem));
                }
            }
            for (field, words) in container_commands(ctr.container) {
                for (i, problem) in command_problems(&words) {
                    findings.push(Finding::on(
                        pod.object,
                        format!("{}.{field}[{i}]", ctr.path),
                        problem,
                    ));
                }
            }
        }
    }
    findings
}

/// The problem with a password file at `path` in this container, if any.
fn password_file_problem(pod: &Pod<'_>, ctr: &Ctr<'_>, path: &str) -> Option<String> {
    let volumes: &[Volume] = pod.spec.volumes.as_deref().unwrap_or_default();
    let mount = ctr.container.volume_mounts.iter().flatten().find(|m| {
        let dir = m.mount_path.trim_end_matches('/');
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
    });
    let Some(mount) = mount else {
        return Some(format!("{path} is not inside any volume mount"));
    };
    let volume = volumes.iter().find(|v| v.name == mount.name);
    let Some(secret) = volume.and_then(|v| v.secret.as_ref()) else {
        return Some(format!(
            "{path} is in volume {}, which is not a Secret",
            mount.name
        ));
    };
    if mount.read_only != Some(true) {
        return Some(format!(
            "the Secret volume {} is mounted writable",
            mount.name
        ));
    }
    // The API's default mode is 0644: readable by every user of the container.
    let modes = std::iter::once(secret.default_mode.unwrap_or(0o644))
        .chain(secret.items.iter().flatten().filter_map(|item| item.mode));
    for mode in modes {
        if mode & 0o007 != 0 {
            return Some(format!(
                "the Secret volume {} has mode {mode:04o}: readable by any user (use 0440)",
                mount.name
            ));
        }
    }
    None
}

pub(crate) fn password_file(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        let postgres = pod
            .expected
            .is_some_and(|w| w.component == Component::Postgres);
        for ctr in pod.containers() {
            let env = ctr.container.env.as_deref().unwrap_or_default();
            for e in env {
                if e.value_from
                    .as_ref()
                    .is_some_and(|f| f.secret_key_ref.is_some())
                {
                    findings.push(Finding::on(
                        pod.object,
                        format!("{}.env[name={}].valueFrom.secretKeyRef", ctr.path, e.name),
                        "puts a Secret into the environment; mount it as a file instead",
                    ));
                }
                if e.name.to_ascii_uppercase().ends_with("PASSWORD_FILE")
                    && let Some(problem) = e
                        .value
                        .as_deref()
                        .and_then(|path| password_file_problem(&pod, &ctr, path))
                {
                    findings.push(Finding::on(
                        pod.object,
                        format!("{}.env[name={}].value", ctr.path, e.name),
                        problem,
                    ));
                }
            }
            for (i, from) in ctr.container.env_from.iter().flatten().enumerate() {
                if from.secret_ref.is_some() {
                    findings.push(Finding::on(
                        pod.object,
                        format!("{}.envFrom[{i}].secretRef", ctr.path),
                        "puts a whole Secret into the environment; mount it as a file instead",
                    ));
                }
            }
            let has = |name: &str| env.iter().any(|e| e.name == name);
            let needs = if ctr.init {
                None
            } else if postgres {
                Some(POSTGRES_PASSWORD_FILE)
            } else if has(var::DATABASE_URL) {
                Some(var::DATABASE_PASSWORD_FILE)
            } else {
                None
            };
            if let Some(needed) = needs.filter(|n| !has(n)) {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.env", ctr.path),
                    format!("has no {needed}: the database password must come from a Secret file"),
                ));
            }
        }
    }

    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn passwords_in_urls_are_found_and_plain_urls_are_not() {
        assert!(has_url_password("postgres://u:pw@db:5432/votes"));
        assert!(has_url_password("redis://:pw@redis:6379"));
        assert!(has_url_password("x=1 http://a:b@h/p and more"));
        assert!(!has_url_password("postgres://u@db:5432/votes"));
        assert!(!has_url_password("postgres://u:@db/votes"));
        assert!(!has_url_password("http://h:8080/a@b"));
        assert!(!has_url_password("no url at all"));
    }

    #[test]
    fn credential_names() {
        for name in [
            "PASSWORD",
            "DB_PASSWORD",
            "api-token",
            "AWS_SECRET_ACCESS_KEY",
            "requirepass",
            "SIGNING_KEY",
            "pass",
            "DB_PW",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in [
            "DATABASE_URL",
            "PGDATA",
            "protected-mode",
            "KEYBOARD",
            "MONKEY_BUSINESS",
        ] {
            assert!(!is_credential_name(name), "{name}");
        }
        assert!(names_a_file("DATABASE_PASSWORD_FILE"));
    }

    #[test]
    fn command_lines_with_credentials() {
        let found = |list: &[&str]| {
            command_problems(&words(list))
                .into_iter()
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert_eq!(found(&["redis-server", "--requirepass", "s3cret"]), [1]);
        assert_eq!(found(&["app", "--password=s3cret"]), [1]);
        assert_eq!(found(&["sh", "-c", "redis-cli --pass s3cret ping"]), [2]);
        assert_eq!(found(&["app", "--db", "postgres://u:p@h/d"]), [2]);
        // A flag without a value, a file, or the next flag is not a credential.
        assert!(found(&["app", "--password", "--verbose"]).is_empty());
        assert!(found(&["app", "--password-file=/run/secrets/pw"]).is_empty());
        assert!(found(&["pg_isready", "-h", "127.0.0.1", "-U", "postgres"]).is_empty());
        assert!(found(&["redis-server", "--protected-mode", "no"]).is_empty());
    }
}
