//! Benchmarks of the vote pipeline, each measured next to its raw limit in the same run on the same
//! servers, because this machine is shared and noisy: a ratio to `redis-benchmark` means something
//! where an absolute figure from another day does not.
//!
//! - intake: `POST /api/vote` through the real API at concurrency 64 (wrk), next to `redis-benchmark`
//!   XADD of the same entry at the same concurrency;
//!   The same for each `appendfsync` policy (`everysec`, the runtime's; `always`; `no`), so the cost
//!   of durability is a ratio measured on this machine;
//! - drain: the consumer counting a backlog of N votes exactly once (the count is checked, not
//!   assumed), next to `pgbench` running the consumer's own batch statement ([`pgbench`]);
//! - vote → SSE latency: from a 201 to the `results` event showing the vote, next to the raw hops
//!   (XADD → blocked XREAD → pg_notify → LISTEN) on the same servers ([`latency`]);
//! - image sizes (target/images/*.tar when built) next to their binaries ([`images`]);
//! - `votectl render` as a whole process.
//!
//! Figures go to stdout and to a Markdown report (docs/benchmarks.md) with an SVG chart beside it
//! ([`chart`]). Nothing here asserts a time: goals are reported as met or not.

pub mod chart;
pub mod images;
pub mod latency;
pub mod machine;
pub mod pgbench;
pub mod report;
pub mod tools;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio_util::sync::CancellationToken;
use vote_contract::VoteOptions;
use vote_contract::settings::{Env, var};
use vote_contract::stream::{STREAM, VoteEntry};
use vote_testkit::{Postgres, Redis, RedisConfig};

use crate::report::{Figure, Report};

#[derive(Debug, clap::Parser)]
#[command(about = "Benchmarks of the vote pipeline next to their raw limits")]
pub struct Args {
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// Concurrent connections for intake (API and redis-benchmark alike).
    #[arg(long, default_value_t = 64)]
    pub concurrency: u32,
    /// Seconds of API load.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// XADDs for redis-benchmark.
    #[arg(long, default_value_t = 200_000)]
    pub raw_requests: u32,
    /// Size of the backlog the consumer drains.
    #[arg(long, default_value_t = 200_000)]
    pub backlog: u32,
    /// Seconds of pgbench running the consumer's batch statement.
    #[arg(long, default_value_t = 10)]
    pub pgbench_seconds: u32,
    /// Votes sent one at a time for the vote → SSE latency (and rounds of the raw hops).
    #[arg(long, default_value_t = 200)]
    pub latency_votes: u32,
    /// Where `votectl images build` writes its archives.
    #[arg(long, default_value = "target/images")]
    pub images: PathBuf,
}

/// The fsync policies whose intake cost is measured; the first is the local runtime's.
pub const FSYNC_POLICIES: [&str; 3] = ["everysec", "always", "no"];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::new(machine::describe());
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    // Intake with each fsync policy, each on a Redis of its own; the runtime's (everysec) first, and
    // that server goes on to serve the other benchmarks.
    let mut redis = None;
    for policy in FSYNC_POLICIES {
        let server = Redis::start_with(RedisConfig {
            appendonly: true,
            appendfsync: Some(policy.into()),
        })
        .await;
        intake(&args, &server, &db, policy, &mut report).await?;
        redis.get_or_insert(server);
    }
    let redis = redis.context("no fsync policy was measured")?;
    drain(&args, &redis, &pg, &db, &mut report).await?;
    sse_latency(&args, &redis, &pg, &mut report).await?;
    image_sizes(&args, &mut report);
    render(&mut report).await?;

    let chart = args.out.with_extension("svg");
    let markdown = report.markdown(chart.file_name().and_then(|n| n.to_str()));
    println!("{markdown}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    std::fs::write(&chart, report.svg())
        .with_context(|| format!("failed to write {}", chart.display()))?;
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    eprintln!("wrote {} and {}", args.out.display(), chart.display());
    Ok(())
}

fn service_env(redis: &Redis, db: &str) -> Env {
    Env::from_pairs([
        (var::PORT, "0".to_owned()),
        (var::REDIS_URL, redis.url()),
        (var::DATABASE_URL, db.to_owned()),
        (var::LOG_LEVEL, "warn".to_owned()),
    ])
}

async fn intake(
    args: &Args,
    redis: &Redis,
    db: &str,
    policy: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let sample = VoteEntry::new(VoteOptions::default().get("dogs").context("dogs")?.clone());
    let raw =
        tools::redis_benchmark_xadd(redis.port(), args.concurrency, args.raw_requests, &sample)
            .await
            .context("failed to run redis-benchmark")?;
    eprintln!("raw XADD: {raw:?}");

    let settings = vote_api::Settings::from_env(&service_env(redis, db))?;
    let app = vote_api::Application::build(settings).await?;
    let url = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    wait_ready(&url).await?;

    // A short unmeasured run first: whichever policy went first would otherwise also pay for the
    // cold start (connections, allocator, caches) and look slower than it is.
    tools::wrk_post_vote(&url, args.concurrency, 2).await?;
    let mut con = redis.connection().await;
    let before: u64 = redis::cmd("XLEN").arg(STREAM).query_async(&mut con).await?;
    let api = tools::wrk_post_vote(&url, args.concurrency, args.seconds).await?;
    let after: u64 = redis::cmd("XLEN").arg(STREAM).query_async(&mut con).await?;
    eprintln!("API intake: {api:?}");
    stop.cancel();
    server.await??;

    ensure!(
        api.errors == 0,
        "{} requests failed or were not 201",
        api.errors
    );
    // wrk stops counting at its deadline while up to one request per connection is still in flight
    // and may yet be appended; more than that would be votes appended without a 201.
    let appended = after - before;
    ensure!(
        appended >= api.requests && appended - api.requests <= u64::from(args.concurrency),
        "wrk counted {} responses but the stream grew by {appended}",
        api.requests
    );
    report.push(Figure {
        name: format!(
            "API intake (POST /api/vote, c={}), appendfsync {policy}",
            args.concurrency
        ),
        value: api.rate,
        unit: "votes/s",
        raw_name: format!(
            "redis-benchmark XADD, c={}, appendfsync {policy}",
            args.concurrency
        ),
        raw_value: Some(raw.rate),
        goal: Some(0.8),
        note: format!(
            "p50 {:.2} ms, p99 {:.2} ms (raw XADD p50 {:.2} ms, p99 {:.2} ms); {} votes, all 201, all in the stream",
            api.p50_ms, api.p99_ms, raw.p50_ms, raw.p99_ms, api.requests
        ),
    });
    Ok(())
}

async fn drain(
    args: &Args,
    redis: &Redis,
    pg: &Postgres,
    db: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let options = VoteOptions::default();
    let mut con = redis.connection().await;
    let _: () = redis::cmd("DEL").arg(STREAM).query_async(&mut con).await?;
    let client = pg.connect(db).await;
    client
        .batch_execute("TRUNCATE processed_votes; UPDATE vote_counts SET count = 0")
        .await?;

    let names = options.names();
    let mut sent = 0u32;
    while sent < args.backlog {
        let n = (args.backlog - sent).min(5_000);
        let mut pipe = redis::pipe();
        for i in 0..n {
            let option = options
                .get(&names[(sent + i) as usize % names.len()])
                .context("option")?
                .clone();
            let fields = VoteEntry::new(option).encode();
            pipe.xadd(STREAM, "*", &fields).ignore();
        }
        let _: () = pipe.query_async(&mut con).await?;
        sent += n;
    }
    eprintln!("backlog of {} votes in the stream", args.backlog);

    let settings = vote_consumer::Settings::from_env(&service_env(redis, db))?;
    let app = vote_consumer::Application::build(settings).await?;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let consumer = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let counted = loop {
        let counted: i64 = client
            .query_one(
                "SELECT COALESCE(sum(count), 0)::bigint FROM vote_counts",
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        if counted >= i64::from(args.backlog) || started.elapsed() > Duration::from_secs(300) {
            break counted;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let elapsed = started.elapsed();
    stop.cancel();
    consumer.await??;
    let processed: i64 = client
        .query_one("SELECT count(*) FROM processed_votes", &[])
        .await?
        .get(0);
    if counted != i64::from(args.backlog) || processed != counted {
        bail!(
            "drain counted {counted} and recorded {processed} request ids for {} votes",
            args.backlog
        );
    }
    let rate = f64::from(args.backlog) / elapsed.as_secs_f64();
    eprintln!("drain: {rate:.0} votes/s");
    report.push(Figure {
        name: format!("consumer drain of a {}-vote backlog", args.backlog),
        value: rate,
        unit: "votes/s",
        raw_name: "goal".into(),
        raw_value: None,
        goal: Some(50_000.0),
        note: format!(
            "{:.2} s from start (migration, group join included); counted exactly once: {counted} counted, {processed} request ids",
            elapsed.as_secs_f64()
        ),
    });

    // The raw limit: PostgreSQL alone running the same statement in batches of the same size.
    let batch = u32::try_from(vote_consumer::settings::DEFAULT_BATCH_SIZE)?;
    let bin = vote_testkit::postgres_bin_dir().context("no PostgreSQL binaries found")?;
    let database = db
        .rsplit('/')
        .next()
        .context("no database name in the URL")?;
    let script = pgbench::script(batch)?;
    let tps = pgbench::run(&bin, pg.port(), database, &script, args.pgbench_seconds).await?;
    let raw = tps * f64::from(batch);
    eprintln!("pgbench of the batch statement: {tps:.1} tps = {raw:.0} votes/s");
    report.push(Figure {
        name: "consumer drain vs its own batch SQL".into(),
        value: rate,
        unit: "votes/s",
        raw_name: format!("pgbench, same SQL, {batch} votes/tx, 1 connection"),
        raw_value: Some(raw),
        goal: None,
        note: format!(
            "pgbench {tps:.1} transactions/s × {batch} for {} s (statement read from the consumer's source); \
             the drain also reads, decodes and acknowledges through Redis",
            args.pgbench_seconds
        ),
    });
    Ok(())
}

/// Vote → SSE latency through the real API, consumer and feed, next to the raw hops.
async fn sse_latency(
    args: &Args,
    redis: &Redis,
    pg: &Postgres,
    report: &mut Report,
) -> anyhow::Result<()> {
    let db = pg.create_database().await;
    let mut con = redis.connection().await;
    let _: () = redis::cmd("DEL").arg(STREAM).query_async(&mut con).await?;
    let stop = CancellationToken::new();
    let api = vote_api::Application::build(vote_api::Settings::from_env(&service_env(redis, &db))?)
        .await?;
    let url = format!("http://127.0.0.1:{}", api.port());
    let consumer = vote_consumer::Application::build(vote_consumer::Settings::from_env(
        &service_env(redis, &db),
    )?)
    .await?;
    let (api_stop, consumer_stop) = (stop.clone(), stop.clone());
    let tasks: [tokio::task::JoinHandle<anyhow::Result<()>>; 2] = [
        tokio::spawn(async move {
            api.run_until_stopped(api_stop.cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        }),
        tokio::spawn(async move {
            consumer
                .run_until_stopped(consumer_stop.cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        }),
    ];
    wait_ready(&url).await?;
    let measured = latency::vote_to_sse(&url, args.latency_votes).await;
    let raw = latency::raw_hops(&redis.url(), &db, args.latency_votes).await;
    stop.cancel();
    for task in tasks {
        task.await??;
    }
    let (measured, raw) = (measured?, raw?);
    eprintln!("vote -> SSE: {measured:?}; raw hops: {raw:?}");
    for (which, value, raw_value) in [
        ("p50", measured.p50_ms, raw.p50_ms),
        ("p99", measured.p99_ms, raw.p99_ms),
    ] {
        report.push(Figure {
            name: format!("vote → SSE event latency, {which}"),
            value,
            unit: "ms",
            raw_name: format!("XADD → XREAD → pg_notify → LISTEN, {which}"),
            raw_value: Some(raw_value),
            goal: None,
            note: format!(
                "{} votes one at a time, {} ms apart, from the 201 to the results event showing the vote; \
                 under steady load add up to 100 ms: the feed folds notifications into at most one read per 100 ms",
                measured.samples,
                latency::GAP.as_millis()
            ),
        });
    }
    Ok(())
}

/// Image archive sizes, when `votectl images build` has written them.
fn image_sizes(args: &Args, report: &mut Report) {
    let target = args
        .images
        .parent()
        .map_or_else(|| PathBuf::from("target"), std::path::Path::to_path_buf);
    let found = images::scan(&args.images, &target);
    if found.is_empty() {
        report.note(format!(
            "Image sizes: not built (no {}/*.tar; `votectl images build` writes them).",
            args.images.display()
        ));
        return;
    }
    const MIB: f64 = 1024.0 * 1024.0;
    for image in found {
        report.push(Figure {
            name: format!("image size, {}", image.service),
            value: image.archive_bytes as f64 / MIB,
            unit: "MiB",
            raw_name: "its release binary".into(),
            raw_value: image.binary.as_ref().map(|(_, n)| *n as f64 / MIB),
            goal: None,
            note: match &image.binary {
                Some((path, _)) => format!(
                    "archive {}/{}.tar; binary {}",
                    args.images.display(),
                    image.service,
                    path.display()
                ),
                None => "binary not found in target/".into(),
            },
        });
    }
}

/// `votectl render` as a user runs it: a whole process (the release binary beside this one), 30 times.
async fn render(report: &mut Report) -> anyhow::Result<()> {
    let votectl = std::env::current_exe()?
        .parent()
        .context("no directory for the current executable")?
        .join("votectl");
    ensure!(
        votectl.exists(),
        "{} is missing: build it first (cargo build --release -p votectl)",
        votectl.display()
    );
    let mut times = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        let out = tokio::process::Command::new(&votectl)
            .args(["render", "--profile", "kind", "--generate-secret"])
            .output()
            .await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            out.status.success() && !out.stdout.is_empty(),
            "votectl render failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    report.push(Figure {
        name: "`votectl render --profile kind` (whole process)".into(),
        value: median,
        unit: "ms",
        raw_name: "goal".into(),
        raw_value: None,
        goal: None,
        note: format!(
            "median of 30 runs; max {max:.1} ms; goal < 50 ms: {}",
            if max < 50.0 { "met" } else { "not met" }
        ),
    });
    Ok(())
}

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let ready = format!("{base}/ready");
    for _ in 0..500 {
        if tools::http_status(&ready).await == Some(200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{ready} did not answer 200 within 10 s")
}
