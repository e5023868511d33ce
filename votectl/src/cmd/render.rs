//! `votectl render`: values → Kubernetes manifests, on stdout or one file per object.
//!
//! Reads the `-f` files and the password file (the manifests crate does no I/O), prints warnings to
//! stderr, and writes nothing at all when anything is wrong: a bad value is a usage error (exit 2)
//! naming the file, line, column and key.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use votectl_manifests::output::{self, Format};
use votectl_manifests::{
    Layers, Password, Profile, Rendered, Secrets, Values, ValuesFile, Warning,
};

use crate::{Ctx, exit};

const SECRET_HELP: &str = "\
The PostgreSQL password never comes from values and never reaches a
Deployment: pods read it from the Secret named by postgresql.passwordSecret
(key `password`), mounted as a file (DATABASE_PASSWORD_FILE), in the api,
consumer and data namespaces. The rendered Secret holds:
  --postgres-password-file FILE  the first line of FILE;
  else a password in postgresql.url, moved there with a warning (--strict
    refuses such a file instead);
  else with --generate-secret, a new random password (new on every run:
    render once and keep the output);
  else no Secret is rendered: it must exist already in each of the three
    namespaces (`votectl up` creates it at first install), e.g.
      kubectl -n voting-api create secret generic postgres-password \\
        --from-file=password=FILE
    and the same in voting-consumer and voting-data.

Values are layered like Helm: the profile, then each -f FILE in order, then
each --set in order. --set takes key.path=value, several separated by
commas; lists as key={a,b}; `null` unsets an optional key; `\\.` and `\\,`
are a literal dot and comma. Errors name the file, line, column and key
(exit code 2) and nothing is written.

Examples:
  votectl render --profile kind | kubectl apply -f -
  votectl render -f prod.yaml --set images.api.tag=1.2.3 --out-dir build/k8s
  votectl render --set networkPolicies.ingressNamespace=ingress-nginx -o json";

#[derive(Debug, clap::Args)]
#[command(after_long_help = SECRET_HELP)]
pub struct Args {
    #[command(flatten)]
    pub input: ValuesArgs,
    /// Output format: multi-document YAML or a JSON v1 List.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,
    /// Write one file per object into DIR (named NNN-kind-namespace-name, in apply order) instead of
    /// stdout. Files of an earlier render in DIR are replaced; other files are left alone.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Where the values come from, and the PostgreSQL Secret: the arguments of every subcommand that
/// renders (`render`, `check`).
#[derive(Debug, Clone, clap::Args)]
pub struct ValuesArgs {
    /// Values file layered over the profile (repeatable; later files win; `-` reads stdin).
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Override one value after all files: key.path=value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Built-in profile to start from.
    #[arg(long, env = "VOTECTL_PROFILE", default_value = "default", value_parser = parse_profile)]
    pub profile: Profile,
    /// Refuse a values file whose postgresql.url holds a password, instead of moving it into the Secret.
    #[arg(long)]
    pub strict: bool,
    /// Render the PostgreSQL Secret with the password on the first line of FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "generate_secret")]
    pub postgres_password_file: Option<PathBuf>,
    /// Render the PostgreSQL Secret with a new random password (unless one is given otherwise).
    #[arg(long)]
    pub generate_secret: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(value: OutputFormat) -> Self {
        match value {
            OutputFormat::Yaml => Format::Yaml,
            OutputFormat::Json => Format::Json,
        }
    }
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse()
}

pub async fn run(args: Args, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let (rendered, warnings) = render(&args.input)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let format = Format::from(args.output);
    match &args.out_dir {
        None => {
            let text = output::to_string(&rendered.objects, format)?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("failed to write the manifests to stdout")?;
        }
        Some(dir) => {
            let written = write_dir(dir, &rendered, format)?;
            eprintln!("wrote {written} files to {}", dir.display());
        }
    }
    Ok(exit::OK)
}

/// Loads the values as the arguments say and renders them; the warnings are for the user.
pub fn render(args: &ValuesArgs) -> anyhow::Result<(Rendered, Vec<Warning>)> {
    let (_, rendered, warnings) = load_and_render(args)?;
    Ok((rendered, warnings))
}

/// [`render`], also returning the values the objects were rendered from.
pub fn load_and_render(args: &ValuesArgs) -> anyhow::Result<(Values, Rendered, Vec<Warning>)> {
    let files = args
        .values
        .iter()
        .map(|path| read_values_file(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let layers = Layers {
        profile: args.profile,
        files,
        sets: args.set.clone(),
        strict: args.strict,
        separate_password: args.postgres_password_file.is_some(),
    };
    // Read before loading, so that a missing password file is reported before any warning.
    let from_file = args
        .postgres_password_file
        .as_deref()
        .map(read_password_file)
        .transpose()?;
    let loaded = layers.load()?;
    let password = match (from_file, loaded.postgres_password) {
        (Some(password), _) | (None, Some(password)) => Some(password),
        (None, None) if args.generate_secret => Some(generate_password()?),
        (None, None) => None,
    };
    let rendered = votectl_manifests::render(
        &loaded.values,
        &Secrets {
            postgres_password: password,
        },
    )?;
    Ok((loaded.values, rendered, loaded.warnings))
}

fn read_values_file(path: &Path) -> anyhow::Result<ValuesFile> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("failed to read values from stdin")?;
        return Ok(ValuesFile::new("<stdin>", text));
    }
    let text = fs::read_to_string(path)
        .with_context(|| format!("failed to read values file {}", path.display()))?;
    Ok(ValuesFile::new(path.display().to_string(), text))
}

fn read_password_file(path: &Path) -> anyhow::Result<Password> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("failed to read the password file {}", path.display()))?;
    let first_line = text.lines().next().unwrap_or_default();
    Password::new(first_line).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// 32 random bytes from the OS, hex-encoded: letters and digits only, so it needs no escaping in
/// any URL, shell or SQL string.
fn generate_password() -> anyhow::Result<Password> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("failed to get random bytes from the OS: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Password::new(hex).map_err(|e| anyhow::anyhow!(e))
}

/// Whether `name` looks like a file an earlier render wrote (`NNN-kind-….yaml|json`).
fn is_rendered_file(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    matches!(ext, "yaml" | "json") && digits == 3 && stem[3..].starts_with('-')
}

fn write_dir(dir: &Path, rendered: &Rendered, format: Format) -> anyhow::Result<usize> {
    // Everything is serialized before anything is touched, so a failure changes nothing.
    let files = rendered
        .objects
        .iter()
        .enumerate()
        .map(|(i, object)| {
            Ok((
                output::file_name(i, object, format),
                output::object_to_string(object, format)?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if dir.exists() && !dir.is_dir() {
        bail!("--out-dir {} exists and is not a directory", dir.display());
    }
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    // A file from an earlier render that this one does not write (say, a NetworkPolicy now turned
    // off) would otherwise be applied with the directory.
    for entry in fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("failed to list {}", dir.display()))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_rendered_file) && entry.path().is_file() {
            fs::remove_file(entry.path())
                .with_context(|| format!("failed to remove {}", entry.path().display()))?;
        }
    }
    for (name, text) in &files {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_file_names_are_recognised() {
        assert!(is_rendered_file("000-namespace-voting-api.yaml"));
        assert!(is_rendered_file("012-deployment-voting-api-api.json"));
        assert!(!is_rendered_file("kustomization.yaml"));
        assert!(!is_rendered_file("0001-x.yaml"));
        assert!(!is_rendered_file("000-x.txt"));
    }

    #[test]
    fn generated_passwords_differ_and_are_hex() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
