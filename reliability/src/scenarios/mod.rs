//! The scenarios. Each starts its own local runtime, injects one kind of fault while votes flow,
//! then settles and audits; see each module for what it proves.

mod consumer_kill;
mod fuzz;
mod malformed;
mod postgres_outage;
mod redis_outage;
mod sse_clients;
mod two_consumers;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use uuid::Uuid;
use votectl::local::Component;

use crate::audit;
use crate::figures::Figures;
use crate::load::Ledger;
use crate::stack::LocalStack;
use crate::{Ctx, Size};

/// The options every scenario's runtime is started with.
pub const OPTIONS: &str = "cats,dogs";

/// One scenario of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// kill -9 the consumer repeatedly during a load; restart it as it was started.
    ConsumerKill,
    /// Redis stopped with SIGTERM and started again during a load.
    RedisRestart,
    /// Redis killed with SIGKILL during a load: the loss window of `appendfsync everysec`.
    RedisKill,
    /// PostgreSQL stopped during a load, started again later.
    PostgresOutage,
    /// Two consumers; one killed with entries pending; the other claims them.
    TwoConsumers,
    /// Malformed entries written straight to the stream between good votes.
    Malformed,
    /// Schemathesis fuzzing the API from its own OpenAPI document.
    Fuzz,
    /// Many Server-Sent Events clients connected while votes flow.
    SseClients,
}

impl Scenario {
    pub const ALL: [Self; 8] = [
        Self::ConsumerKill,
        Self::RedisRestart,
        Self::RedisKill,
        Self::PostgresOutage,
        Self::TwoConsumers,
        Self::Malformed,
        Self::Fuzz,
        Self::SseClients,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ConsumerKill => "consumer-kill",
            Self::RedisRestart => "redis-restart",
            Self::RedisKill => "redis-kill",
            Self::PostgresOutage => "postgres-outage",
            Self::TwoConsumers => "two-consumers",
            Self::Malformed => "malformed",
            Self::Fuzz => "fuzz",
            Self::SseClients => "sse-clients",
        }
    }

    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Figures> {
        let stack = LocalStack::start(&ctx.votectl, OPTIONS)
            .await
            .context("failed to start the local runtime")?;
        let outcome = match self {
            Self::ConsumerKill => consumer_kill::run(ctx, &stack).await,
            Self::RedisRestart => redis_outage::run(ctx, &stack, false).await,
            Self::RedisKill => redis_outage::run(ctx, &stack, true).await,
            Self::PostgresOutage => postgres_outage::run(ctx, &stack).await,
            Self::TwoConsumers => two_consumers::run(ctx, &stack).await,
            Self::Malformed => malformed::run(ctx, &stack).await,
            Self::Fuzz => fuzz::run(ctx, &stack).await,
            Self::SseClients => sse_clients::run(ctx, &stack).await,
        };
        // A scenario that could not finish still shows what the logs said before the stack goes.
        let mut figures = outcome.unwrap_or_else(|e| {
            let mut f = Figures::new(self.name());
            f.failures.push(format!("could not finish: {e:#}"));
            f
        });
        figures.scenario = self.name().to_owned();
        if !figures.passed() {
            for (log, tail) in stack.log_tails(8) {
                figures.note(format!("last lines of {log}:\n{tail}"));
            }
        }
        Ok(figures)
    }
}

/// Measures recovery in the background: from now (the end of a fault) until the consumer has
/// recorded as many votes as had been acknowledged by now. Load may go on meanwhile.
pub fn watch_recovery(
    stack: &LocalStack,
    acknowledged_now: u64,
    size: &Size,
    stall: Option<Duration>,
) -> anyhow::Result<tokio::task::JoinHandle<Option<Duration>>> {
    let db = stack.url(Component::Postgres)?;
    let deadline = size.settle;
    Ok(tokio::spawn(async move {
        audit::catch_up(&db, acknowledged_now, deadline, stall).await
    }))
}

/// Puts a recovery measured by [`watch_recovery`] into `figures`.
pub async fn recovery(
    figures: &mut Figures,
    watcher: tokio::task::JoinHandle<Option<Duration>>,
) -> anyhow::Result<()> {
    match watcher.await? {
        Some(took) => figures.recover = Some(took),
        None => figures.note(
            "the consumer never caught up with the votes acknowledged before the fault ended",
        ),
    }
    Ok(())
}

/// The end of every scenario: waits for every acknowledged vote to be recorded (unless a recovery
/// was measured already, the time it took counts as the time to recover, from `fault_end`) and for
/// the group to have nothing pending, then audits.
pub async fn settle_and_audit(
    size: &Size,
    stack: &LocalStack,
    ledger: &Ledger,
    foreign: &HashSet<Uuid>,
    fault_end: Instant,
    stall: Option<Duration>,
    figures: &mut Figures,
) -> anyhow::Result<audit::Audit> {
    let db = stack.url(Component::Postgres)?;
    let redis = stack.url(Component::Redis)?;
    let acked = ledger.acknowledged_ids();
    match audit::wait_recorded(&db, &acked, size.settle, stall).await {
        Some(_) => {
            figures.recover = figures.recover.or(Some(fault_end.elapsed()));
        }
        None => figures.note(format!(
            "not every acknowledged vote was recorded (waited up to {}s)",
            size.settle.as_secs()
        )),
    }
    let drained = audit::wait_drained(&redis, Duration::from_secs(60)).await;
    figures.check(
        drained,
        "the consumer group still had undelivered or unacknowledged entries after 60 s",
    );
    let client = audit::connect(&db)
        .await
        .context("failed to connect to PostgreSQL for the audit")?;
    let result = audit::audit(&client, ledger, foreign).await?;
    Ok(result)
}
