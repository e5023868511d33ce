//! PostgreSQL stopped (fast shutdown, as `votectl down` stops it) during a paced load, started again
//! after the outage. Proven: votes keep being acknowledged meanwhile (intake needs only Redis), the
//! consumer reports itself not ready and backs off without exiting (same PID), then catches up:
//! nothing lost, nothing counted twice. Time to recover: from PostgreSQL's restart until every
//! acknowledged vote is counted.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use votectl::local::Component;

use crate::figures::Figures;
use crate::load::{self, LoadConfig, Progress, Voter};
use crate::stack::{LocalStack, wait_until};
use crate::{Ctx, scenarios};

pub async fn run(ctx: &Ctx, stack: &LocalStack) -> anyhow::Result<Figures> {
    let size = &ctx.size;
    let mut figures = Figures::new("postgres-outage");
    let api = stack.url(Component::Api)?;
    let consumer_url = stack.url(Component::Consumer)?;
    let consumer_pid = stack.pid(Component::Consumer)?;
    let options = stack.options()?;
    let voter = Voter::new(&api, size.concurrency)?;
    let seconds = size.lead.as_secs_f64() * 2.0 + size.postgres_outage.as_secs_f64();
    let mut config = LoadConfig::new((size.paced_rate * seconds) as u64);
    config.rate = Some(size.paced_rate);
    config.concurrency = size.concurrency;
    let progress = Progress::default();
    let load = tokio::spawn({
        let (progress, options) = (progress.clone(), options.clone());
        async move { load::run(&voter, &options, &config, &progress).await }
    });

    tokio::time::sleep(size.lead).await;
    let stop_at = Instant::now();
    // SIGINT is PostgreSQL's fast shutdown: clients are disconnected, nothing waits for them.
    stack
        .signal(Component::Postgres, Signal::SIGINT, Duration::from_secs(60))
        .await?;
    let acked_at_stop = progress.acknowledged();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let not_ready = wait_until(Duration::from_secs(30), || async {
        http.get(format!("{consumer_url}/ready"))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    figures.check(
        not_ready.is_ok(),
        "the consumer's /ready never answered 503 while PostgreSQL was down",
    );
    let remaining = size.postgres_outage.saturating_sub(stop_at.elapsed());
    tokio::time::sleep(remaining).await;
    let acked_during = progress.acknowledged() - acked_at_stop;
    stack.restart_postgres()?;
    let restarted_at = Instant::now();
    let watcher = scenarios::watch_recovery(stack, progress.acknowledged(), size, None)?;
    stack
        .wait_component_ready(Component::Postgres, Duration::from_secs(60))
        .await?;
    let report = load.await?;
    scenarios::recovery(&mut figures, watcher).await?;
    figures.note(format!(
        "PostgreSQL down {:.1}s; {acked_during} votes acknowledged meanwhile; load {:.0} votes/s for {:.1}s",
        (restarted_at - stop_at).as_secs_f64(),
        size.paced_rate,
        report.elapsed.as_secs_f64()
    ));
    figures.check(
        acked_during > 0,
        "no vote was acknowledged while PostgreSQL was down",
    );
    let never = report.ledger.sent() - report.ledger.acknowledged_count();
    figures.check(
        never == 0,
        format!("{never} votes never got a 201 (intake should not need PostgreSQL)"),
    );
    let audit = scenarios::settle_and_audit(
        size,
        stack,
        &report.ledger,
        &HashSet::new(),
        restarted_at,
        None,
        &mut figures,
    )
    .await?;
    figures.with_audit(&audit);
    figures.check(
        consumer_pid.is_alive() && stack.pid(Component::Consumer)? == consumer_pid,
        "the consumer exited during the outage instead of backing off",
    );
    let backoff_lines = std::fs::read_to_string(stack.record(Component::Consumer)?.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("postgres"))
        .count();
    figures.note(format!(
        "consumer stayed up (same PID); {backoff_lines} log lines mention postgres"
    ));
    Ok(figures)
}
