//! Finding the programs the local runtime starts.
//!
//! Redis and PostgreSQL come from Debian's packages (`redis-server`, `postgresql`); the services are the
//! workspace's own binaries, looked for next to the running votectl (cargo puts them in the same
//! target directory) unless `--bin-dir` says where.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Component, Error};

/// Everything `up` will execute, found before anything is started.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub redis_server: PathBuf,
    /// The directory holding `initdb` and `postgres` of one PostgreSQL version.
    pub postgres_bin: PathBuf,
    pub api: PathBuf,
    pub consumer: PathBuf,
    pub frontend: PathBuf,
}

impl Binaries {
    pub fn find(bin_dir: Option<&Path>) -> anyhow::Result<Self> {
        let redis_server = find_redis_server()?;
        let postgres_bin = find_postgres_bin()?;
        let dir = match bin_dir {
            Some(dir) => dir.to_path_buf(),
            None => own_dir()?,
        };
        let service = |c: Component| find_service(&dir, c, bin_dir.is_some());
        Ok(Self {
            redis_server,
            postgres_bin,
            api: service(Component::Api)?,
            consumer: service(Component::Consumer)?,
            frontend: service(Component::Frontend)?,
        })
    }

    /// The program started for a service component.
    pub fn service(&self, component: Component) -> Option<&Path> {
        match component {
            Component::Api => Some(&self.api),
            Component::Consumer => Some(&self.consumer),
            Component::Frontend => Some(&self.frontend),
            Component::Redis | Component::Postgres => None,
        }
    }
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `redis-server` on PATH (Debian installs it in /usr/bin).
pub fn find_redis_server() -> Result<PathBuf, Error> {
    path_dirs()
        .into_iter()
        .map(|d| d.join("redis-server"))
        .find(|p| is_executable(p))
        .ok_or(Error::MissingTool {
            tool: "redis-server",
            package: "redis-server",
            looked: " on PATH".to_owned(),
        })
}

/// A directory with both `initdb` and `postgres`: first on PATH, else Debian's newest
/// `/usr/lib/postgresql/<version>/bin` (Debian keeps them off PATH).
pub fn find_postgres_bin() -> Result<PathBuf, Error> {
    let has_both =
        |d: &Path| is_executable(&d.join("initdb")) && is_executable(&d.join("postgres"));
    if let Some(dir) = path_dirs().into_iter().find(|d| has_both(d)) {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(Error::MissingTool {
            tool: "initdb",
            package: "postgresql",
            looked: " on PATH or in /usr/lib/postgresql/*/bin".to_owned(),
        })
}

/// The directory of the running votectl executable.
fn own_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to locate the votectl executable")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("the votectl executable has no parent directory")
}

fn find_service(dir: &Path, component: Component, explicit: bool) -> anyhow::Result<PathBuf> {
    let name = component
        .service_binary()
        .context("not a service component")?;
    let path = dir.join(name);
    if is_executable(&path) {
        return Ok(path);
    }
    let hint = if explicit {
        "check --bin-dir".to_owned()
    } else {
        format!(
            "build it with `cargo build -p {name}` (the same profile as votectl), or pass --bin-dir"
        )
    };
    anyhow::bail!("{name} not found in {}: {hint}", dir.display())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_service_names_the_binary_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let err = find_service(tmp.path(), Component::Api, false).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("vote-api not found in"), "{text}");
        assert!(text.contains("cargo build -p vote-api"), "{text}");
        let err = find_service(tmp.path(), Component::Consumer, true).unwrap_err();
        assert!(err.to_string().contains("--bin-dir"), "{err}");
    }

    #[test]
    fn missing_tools_name_the_debian_package() {
        let err = Error::MissingTool {
            tool: "initdb",
            package: "postgresql",
            looked: String::new(),
        };
        assert_eq!(
            err.to_string(),
            "initdb not found: install Debian's `postgresql` package (apt-get install postgresql)"
        );
    }
}
