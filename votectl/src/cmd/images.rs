//! `votectl images build|load`: container images with no container engine, loaded with the cluster's
//! own loader. The work is in [`crate::images`]; this file parses arguments and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::images::{self, BuiltImage, cargo::Target, load};
use crate::{Ctx, exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build the release binaries and write one OCI + docker-save archive (and SBOM) per image.
    Build(BuildArgs),
    /// Load built archives into the cluster of the kube context (minikube, kind, k3d) or podman.
    Load(LoadArgs),
}

/// Which binaries to put in the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetChoice {
    /// musl when its Rust target and musl-gcc are installed, else gnu.
    Auto,
    /// Static binaries: nothing else in the image.
    Musl,
    /// glibc binaries plus the loader and libraries they link.
    Gnu,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Where the archives, SBOMs and images.json go.
    #[arg(long, default_value = "target/images")]
    pub out_dir: PathBuf,
    /// Build only these images (repeatable); default: all.
    #[arg(long = "service", value_name = "NAME", value_parser = ["api", "consumer", "frontend", "votectl"])]
    pub services: Vec<String>,
    /// Rust target of the binaries.
    #[arg(long, value_enum, default_value_t = TargetChoice::Auto)]
    pub target: TargetChoice,
    /// Use the binaries in DIR instead of running `cargo build --release`.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Image creation time and every file's mtime (seconds since the epoch); default: commit time of HEAD.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<i64>,
    /// CA bundle copied into the images.
    #[arg(long, default_value = "/etc/ssl/certs/ca-certificates.crt")]
    pub ca_certificates: PathBuf,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// The cargo to run.
    #[arg(long, env = "CARGO", default_value = "cargo", hide = true)]
    pub cargo: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Loader: auto decides from the kube context name (minikube, kind-*, k3d-*).
    #[arg(long, value_enum, default_value_t = load::Into::Auto)]
    pub into: load::Into,
    /// Kube context to decide from (default: the kubeconfig's current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Where `images build` wrote the archives.
    #[arg(long, default_value = "target/images")]
    pub dir: PathBuf,
    /// Load only these images (repeatable); default: all in the directory.
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    #[arg(long, env = "KUBECONFIG", hide = true)]
    pub kubeconfig: Option<String>,
    #[arg(long, env = "HOME", hide = true)]
    pub home: Option<PathBuf>,
}

pub async fn run(args: Args, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match args.command {
        ImagesCommand::Build(args) => build(args).await,
        ImagesCommand::Load(args) => load_images(args).await,
    }
}

async fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let services = if args.services.is_empty() {
        images::SERVICES.to_vec()
    } else {
        // In the order of SERVICES, each once, however often it was named.
        images::SERVICES
            .into_iter()
            .filter(|s| args.services.iter().any(|name| name == s.name))
            .collect()
    };
    let target = match args.target {
        TargetChoice::Auto => None,
        TargetChoice::Musl => {
            if !images::cargo::musl_available(&args.cargo) {
                anyhow::bail!(
                    "--target musl needs `rustup target add x86_64-unknown-linux-musl` and musl-gcc \
                     (Debian: musl-tools)"
                );
            }
            Some(Target::Musl)
        }
        TargetChoice::Gnu => Some(Target::Gnu),
    };
    let opts = images::BuildOptions {
        cargo: args.cargo,
        workspace_dir: std::env::current_dir().context("failed to read the current directory")?,
        out_dir: args.out_dir.clone(),
        services,
        target,
        bin_dir: args.bin_dir,
        source_date_epoch: args.source_date_epoch,
        ca_certificates: args.ca_certificates,
    };
    let built = tokio::task::spawn_blocking(move || images::build(&opts))
        .await
        .context("image build task failed")?
        .context("failed to build the images")?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&built)?),
        Output::Table => {
            println!("{}", table(&built));
            println!(
                "archives, SBOMs and {} in {}",
                images::INDEX_FILE,
                args.out_dir.display()
            );
        }
    }
    Ok(exit::OK)
}

/// IMAGE, TAG, DIGEST (manifest), SIZE (archive, MiB).
pub fn table(images: &[BuiltImage]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["IMAGE", "TAG", "DIGEST", "SIZE"]);
    for image in images {
        table.add_row([
            image.repository.clone(),
            image.tag.clone(),
            image.manifest_digest.clone(),
            format!("{:.1} MiB", image.size as f64 / (1024.0 * 1024.0)),
        ]);
    }
    table
}

async fn load_images(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let index = images::read_index(&args.dir)?;
    let selected: Vec<&BuiltImage> = index
        .iter()
        .filter(|i| args.services.is_empty() || args.services.contains(&i.service))
        .collect();
    if let Some(unknown) = args
        .services
        .iter()
        .find(|s| !index.iter().any(|i| &i.service == *s))
    {
        anyhow::bail!(
            "no image `{unknown}` in {}",
            args.dir.join(images::INDEX_FILE).display()
        );
    }
    let context = match (&args.context, args.into) {
        (Some(context), _) => Some(context.clone()),
        (None, load::Into::Podman) => None,
        (None, _) => load::current_context(&load::kubeconfig_paths(
            args.kubeconfig.as_deref(),
            args.home.as_deref(),
        ))?,
    };
    let loader = load::resolve(args.into, context.as_deref())?;
    loader.check_installed()?;
    for image in selected {
        let archive = args.dir.join(&image.archive);
        let task_loader = loader.clone();
        let path = archive.clone();
        tokio::task::spawn_blocking(move || task_loader.load(&path))
            .await
            .context("load task failed")?
            .with_context(|| format!("failed to load {}", archive.display()))?;
        println!("loaded {} into {}", image.reference(), loader.describe());
    }
    Ok(exit::OK)
}
