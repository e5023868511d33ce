//! Benchmarks of the vote pipeline, each measured next to its raw limit in the same run on the same
//! servers, because this machine is shared and noisy: a ratio to `redis-benchmark` means something
//! where an absolute figure from another day does not.
//!
//! - intake: `POST /api/vote` through the real API at concurrency 64 (wrk), next to `redis-benchmark`
//!   XADD of the same entry at the same concurrency;
//! - drain: the consumer counting a backlog of N votes exactly once (the count is checked, not
//!   assumed).
//!
//! Figures go to stdout and to a Markdown report (docs/benchmarks.md). Nothing here asserts a time:
//! goals are reported as met or not.

pub mod machine;
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
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::new(machine::describe());
    // The same persistence the local runtime uses: AOF with fsync every second.
    let redis = Redis::start_with(RedisConfig {
        appendonly: true,
        appendfsync: Some("everysec".into()),
    })
    .await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;

    intake(&args, &redis, &db, &mut report).await?;
    drain(&args, &redis, &pg, &db, &mut report).await?;
    render(&mut report).await?;

    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
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

async fn intake(args: &Args, redis: &Redis, db: &str, report: &mut Report) -> anyhow::Result<()> {
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
        name: format!("API intake (POST /api/vote, c={})", args.concurrency),
        value: api.rate,
        unit: "votes/s",
        raw_name: format!("redis-benchmark XADD, c={}", args.concurrency),
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
    Ok(())
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
