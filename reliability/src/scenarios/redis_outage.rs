//! Redis goes away during a paced load and comes back (started as `votectl up --local` starts it:
//! AOF on, `appendfsync everysec`).
//!
//! SIGTERM (`redis-restart`): Redis fsyncs its AOF and exits. Proven: the API answers only 201 or
//! 503-with-`Retry-After`, the 503s fall inside the outage (from the stop until the API's first 201
//! after Redis is back, plus the API's own Redis timeout for requests already in flight), the API
//! recovers without a restart (same PID), and no acknowledged vote is lost.
//!
//! SIGKILL (`redis-kill`): whatever Redis had not written is gone. The loss is *measured* (acknowledged
//! votes missing afterwards, and how long before the kill the oldest of them was acknowledged) and
//! reported next to the votes acknowledged in the last second before the kill (the most an OS crash
//! could take with `everysec`); it does not fail the scenario. A double count still does.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use votectl::local::Component;

use crate::figures::Figures;
use crate::load::{self, Answer, LoadConfig, Progress, Voter};
use crate::stack::LocalStack;
use crate::{Ctx, audit, scenarios};

/// 503s answered this long after the API's first 201 since Redis came back still belong to the
/// outage: requests in flight at that moment wait out the API's Redis timeout (1 s) first.
const IN_FLIGHT_ALLOWANCE: Duration = Duration::from_secs(5);

pub async fn run(ctx: &Ctx, stack: &LocalStack, kill: bool) -> anyhow::Result<Figures> {
    let size = &ctx.size;
    let mut figures = Figures::new(if kill { "redis-kill" } else { "redis-restart" });
    let api = stack.url(Component::Api)?;
    let api_pid = stack.pid(Component::Api)?;
    let options = stack.options()?;
    let voter = Voter::new(&api, size.concurrency)?;
    // Long enough to cover the lead, the outage and as long again after it.
    let seconds = size.lead.as_secs_f64() * 2.0 + size.redis_outage.as_secs_f64() * 2.0;
    let mut config = LoadConfig::new((size.paced_rate * seconds) as u64);
    config.rate = Some(size.paced_rate);
    config.concurrency = size.concurrency;
    let progress = Progress::default();
    let load = tokio::spawn({
        let (progress, options) = (progress.clone(), options.clone());
        async move { load::run(&voter, &options, &config, &progress).await }
    });

    tokio::time::sleep(size.lead).await;
    let signal = if kill {
        Signal::SIGKILL
    } else {
        Signal::SIGTERM
    };
    let stop_at = Instant::now();
    stack
        .signal(Component::Redis, signal, Duration::from_secs(30))
        .await?;
    let stopped_in = stop_at.elapsed();
    tokio::time::sleep(size.redis_outage).await;
    stack.restart_redis()?;
    let restarted_at = Instant::now();
    let watcher = scenarios::watch_recovery(
        stack,
        progress.acknowledged(),
        size,
        kill.then_some(Duration::from_secs(20)),
    )?;
    stack
        .wait_component_ready(Component::Redis, Duration::from_secs(60))
        .await?;
    let report = load.await?;
    scenarios::recovery(&mut figures, watcher).await?;

    let recovered_at = report
        .attempts
        .iter()
        .filter(|a| a.answer == Answer::Created && a.at >= restarted_at)
        .map(|a| a.at)
        .min();
    figures.note(format!(
        "Redis {} and stopped within {:.2}s, down {:.1}s; load {:.0} votes/s for {:.1}s",
        if kill {
            "killed (SIGKILL)"
        } else {
            "sent SIGTERM"
        },
        stopped_in.as_secs_f64(),
        (restarted_at - stop_at).as_secs_f64(),
        size.paced_rate,
        report.elapsed.as_secs_f64()
    ));
    match recovered_at {
        Some(at) => figures.note(format!(
            "API's first 201 {:.2}s after Redis was started again (no API restart)",
            (at - restarted_at).as_secs_f64()
        )),
        None => figures.check(false, "the API never answered 201 after Redis came back"),
    }
    figures.check(
        api_pid.is_alive() && stack.pid(Component::Api)? == api_pid,
        "the API process did not survive the outage",
    );

    let unavailable = |a: &Answer| matches!(a, Answer::Unavailable { .. });
    let outage_end = recovered_at.unwrap_or(restarted_at) + IN_FLIGHT_ALLOWANCE;
    let before = report
        .attempts
        .iter()
        .filter(|a| unavailable(&a.answer) && a.at < stop_at)
        .count();
    let during = report
        .attempts
        .iter()
        .filter(|a| unavailable(&a.answer) && a.at >= stop_at && a.at <= outage_end)
        .count();
    let after = report
        .attempts
        .iter()
        .filter(|a| unavailable(&a.answer) && a.at > outage_end)
        .count();
    let no_retry_after = report.count(|a| *a == Answer::Unavailable { retry_after: false });
    let other_status = report.count(|a| matches!(a, Answer::Status(_)));
    let transport = report.count(|a| matches!(a, Answer::Transport(_)));
    figures.note(format!(
        "503 answers: {before} before the outage, {during} during it, {after} after it; \
         {no_retry_after} without Retry-After; {other_status} other non-201 statuses; {transport} transport errors"
    ));
    figures.check(during > 0, "the outage produced no 503 at all");
    figures.check(before == 0 && after == 0, "503 answers outside the outage");
    figures.check(no_retry_after == 0, "503 answers without Retry-After");
    figures.check(
        other_status == 0 && transport == 0,
        "answers other than 201 and 503 (or no answer)",
    );
    let never = report.ledger.sent() - report.ledger.acknowledged_count();
    figures.check(
        never == 0,
        format!("{never} votes never got a 201 despite retrying after Retry-After"),
    );

    let audit = scenarios::settle_and_audit(
        size,
        stack,
        &report.ledger,
        &HashSet::new(),
        restarted_at,
        // After a kill -9, votes may be gone for good: stop waiting once nothing moves for 20 s.
        kill.then_some(Duration::from_secs(20)),
        &mut figures,
    )
    .await?;
    if kill {
        loss_window(&mut figures, &report.ledger, &audit, stack, stop_at).await?;
    } else {
        figures.with_audit(&audit);
    }
    Ok(figures)
}

/// Reports what SIGKILL cost without failing on it: the lost votes and how long before the kill the
/// oldest of them had been acknowledged.
async fn loss_window(
    figures: &mut Figures,
    ledger: &crate::load::Ledger,
    result: &audit::Audit,
    stack: &LocalStack,
    killed_at: Instant,
) -> anyhow::Result<()> {
    let mut lenient = result.clone();
    let lost = lenient.lost;
    lenient.lost = 0;
    figures.with_audit(&lenient);
    figures.lost = lost + result.misattributed;
    let last_second = ledger
        .acked_at
        .values()
        .filter(|at| **at <= killed_at && killed_at - **at <= Duration::from_secs(1))
        .count();
    let client = audit::connect(&stack.url(Component::Postgres)?).await?;
    let acked = ledger.acknowledged_ids();
    let rows = client
        .query(
            "SELECT request_id FROM processed_votes WHERE request_id = ANY($1)",
            &[&acked],
        )
        .await?;
    let recorded: HashSet<uuid::Uuid> = rows.into_iter().map(|r| r.get(0)).collect();
    let oldest_lost = ledger
        .acked_at
        .iter()
        .filter(|(id, _)| !recorded.contains(*id))
        .map(|(_, at)| *at)
        .min();
    let window = oldest_lost.map_or(Duration::ZERO, |at| killed_at.saturating_duration_since(at));
    figures.note(format!(
        "measured loss with appendfsync everysec under kill -9: {lost} acknowledged votes, \
         window {:.3}s before the kill (votes acknowledged in the last second before it: {last_second}, \
         the most an OS crash could take at everysec; a killed process loses only what it had not yet \
         written to the kernel)",
        window.as_secs_f64()
    ));
    Ok(())
}
