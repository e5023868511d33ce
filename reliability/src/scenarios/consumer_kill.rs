//! kill -9 the consumer N times while M votes are sent; each time it is started again as it was
//! started (command line, environment, directory read from `/proc`; same consumer name, so it
//! re-reads its own unacknowledged entries). The count must equal the acknowledged votes.
//!
//! Kills are spread by progress, not by time: kill *i* comes once (i + 1)/(N + 1) of the votes are
//! done, so on any machine they fall inside the load unless a restart takes longer than a slice of
//! it (the report says how many did).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use votectl::local::Component;

use crate::figures::Figures;
use crate::load::{self, LoadConfig, Progress, Voter};
use crate::procfs::Launch;
use crate::stack::LocalStack;
use crate::{Ctx, scenarios};

pub async fn run(ctx: &Ctx, stack: &LocalStack) -> anyhow::Result<Figures> {
    let size = &ctx.size;
    let mut figures = Figures::new("consumer-kill");
    let api = stack.url(Component::Api)?;
    let consumer_url = stack.url(Component::Consumer)?;
    let options = stack.options()?;
    let voter = Voter::new(&api, size.concurrency)?;
    let progress = Progress::default();
    let mut config = LoadConfig::new(size.consumer_kill_votes);
    config.concurrency = size.concurrency;
    let load = tokio::spawn({
        let (progress, options) = (progress.clone(), options.clone());
        async move { load::run(&voter, &options, &config, &progress).await }
    });

    let kills = size.consumer_kills;
    let votes = size.consumer_kill_votes;
    let mut during_load = 0;
    let mut ready_after = Vec::new();
    let mut last_restart = Instant::now();
    let mut watcher = None;
    for i in 0..kills {
        let threshold = (u64::from(i) + 1) * votes / (u64::from(kills) + 1);
        while progress.done() < threshold && !load.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid = stack.pid(Component::Consumer)?;
        let launch = Launch::of(pid.pid)?;
        if !load.is_finished() {
            during_load += 1;
        }
        stack
            .signal(
                Component::Consumer,
                Signal::SIGKILL,
                Duration::from_secs(10),
            )
            .await?;
        stack.restart_from(Component::Consumer, &launch)?;
        last_restart = Instant::now();
        if i + 1 == kills {
            watcher = Some(scenarios::watch_recovery(
                stack,
                progress.acknowledged(),
                size,
                None,
            )?);
        }
        match stack
            .wait_ready(&consumer_url, Duration::from_secs(120))
            .await
        {
            Ok(took) => ready_after.push(took),
            Err(e) => {
                let alive = stack.pid(Component::Consumer)?.is_alive();
                anyhow::bail!(
                    "after kill {} of {kills}: {e:#} (the restarted consumer is {})",
                    i + 1,
                    if alive { "running" } else { "gone" }
                );
            }
        }
    }
    let report = load.await?;
    figures.note(format!(
        "{kills} kill -9 of the consumer, {during_load} while votes were still being sent; load took {:.1}s",
        report.elapsed.as_secs_f64()
    ));
    if let (Some(min), Some(max)) = (ready_after.iter().min(), ready_after.iter().max()) {
        figures.note(format!(
            "restart to /ready: min {:.2}s, max {:.2}s",
            min.as_secs_f64(),
            max.as_secs_f64()
        ));
    }
    let restarts = stack.record(Component::Consumer)?.restarts;
    figures.check(
        restarts == kills,
        format!("runtime.json records {restarts} consumer restarts, not {kills}"),
    );
    let not_acked = report.ledger.sent() - report.ledger.acknowledged_count();
    figures.check(
        not_acked == 0,
        format!(
            "{not_acked} votes were never acknowledged (the API should not care about the consumer)"
        ),
    );
    if let Some(watcher) = watcher {
        scenarios::recovery(&mut figures, watcher).await?;
    }
    let audit = scenarios::settle_and_audit(
        size,
        stack,
        &report.ledger,
        &HashSet::new(),
        last_restart,
        None,
        &mut figures,
    )
    .await?;
    figures.with_audit(&audit);
    figures.check(
        audit.counted == audit.acknowledged,
        format!(
            "counted {} != acknowledged {}",
            audit.counted, audit.acknowledged
        ),
    );
    Ok(figures)
}
