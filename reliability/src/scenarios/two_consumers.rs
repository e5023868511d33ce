//! Two consumers in the group; one is killed while it holds entries it read but did not acknowledge;
//! the other claims them (`XAUTOCLAIM` once they have been idle for the claim time) and counts them.
//!
//! To make "holds entries" certain rather than lucky, the suite briefly locks `vote_counts` against
//! writes: both consumers read a batch and wait on their commit; the victim is killed with its batch
//! pending, then the lock is released. The victim (the runtime's own consumer) is not restarted, so
//! only the survivor can have acknowledged its entries.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use vote_contract::stream::{GROUP, STREAM};
use votectl::local::Component;
use votectl::local::wiring::CONSUMER_NAME;

use crate::figures::Figures;
use crate::load::{self, LoadConfig, Progress, Voter};
use crate::procfs::Launch;
use crate::stack::{LocalStack, wait_until};
use crate::{Ctx, audit, scenarios};

/// Name of the second consumer in the group.
pub const SURVIVOR: &str = "reliability-second-consumer";

/// Pending entries per consumer (`XPENDING key group` summary form).
async fn pending_of(
    con: &mut redis::aio::MultiplexedConnection,
    consumer: &str,
) -> redis::RedisResult<u64> {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .query_async(con)
        .await?;
    let redis::Value::Array(parts) = summary else {
        return Ok(0);
    };
    let Some(redis::Value::Array(consumers)) = parts.get(3) else {
        return Ok(0);
    };
    for entry in consumers {
        if let redis::Value::Array(pair) = entry
            && let [name, count] = pair.as_slice()
            && text(name) == consumer
        {
            return Ok(text(count).parse().unwrap_or(0));
        }
    }
    Ok(0)
}

/// A string or integer reply as text (empty for anything else).
fn text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

pub async fn run(ctx: &Ctx, stack: &LocalStack) -> anyhow::Result<Figures> {
    let size = &ctx.size;
    let mut figures = Figures::new("two-consumers");
    let api = stack.url(Component::Api)?;
    let db = stack.url(Component::Postgres)?;
    let redis_url = stack.url(Component::Redis)?;
    let victim = stack.pid(Component::Consumer)?;
    let launch = Launch::of(victim.pid)?;
    let port = crate::stack::listen_port(&std::collections::BTreeSet::new())?;
    let survivor = SecondConsumer::start(&launch, port, &stack.state().logs_dir())?;
    stack
        .wait_ready(&format!("http://127.0.0.1:{port}"), Duration::from_secs(60))
        .await?;

    let options = stack.options()?;
    let voter = Voter::new(&api, size.concurrency)?;
    let mut config = LoadConfig::new(size.two_consumer_votes);
    config.concurrency = size.concurrency;
    // Paced so that votes are still flowing after the kill.
    config.rate = Some(size.paced_rate);
    let progress = Progress::default();
    let load = tokio::spawn({
        let (progress, options) = (progress.clone(), options.clone());
        async move { load::run(&voter, &options, &config, &progress).await }
    });
    tokio::time::sleep(size.lead).await;

    let mut locker = audit::connect(&db).await?;
    let tx = locker.transaction().await?;
    tx.batch_execute("LOCK TABLE vote_counts IN SHARE MODE")
        .await?;
    let mut con = redis::Client::open(redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut held = 0;
    let wait_started = Instant::now();
    while held == 0 && wait_started.elapsed() < Duration::from_secs(30) {
        held = pending_of(&mut con, CONSUMER_NAME).await.unwrap_or(0);
        if held == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let kill_at = Instant::now();
    stack
        .signal(
            Component::Consumer,
            Signal::SIGKILL,
            Duration::from_secs(10),
        )
        .await?;
    tx.rollback().await?;
    figures.check(
        held > 0,
        "the victim never held pending entries (the scenario proved nothing)",
    );
    figures.note(format!(
        "killed {CONSUMER_NAME} holding {held} pending entries; {SURVIVOR} left to claim them"
    ));

    let report = load.await?;
    let claimed = wait_until(size.settle, || {
        let mut con = con.clone();
        async move {
            pending_of(&mut con, CONSUMER_NAME)
                .await
                .is_ok_and(|n| n == 0)
        }
    })
    .await;
    match claimed {
        Ok(_) => {
            // Recovery here is the claim: the rest of the stream never stopped flowing.
            figures.recover = Some(kill_at.elapsed());
            figures.note(format!(
                "{SURVIVOR} claimed them {:.1}s after the kill (claim idle time 30 s, scan every 10 s)",
                kill_at.elapsed().as_secs_f64()
            ));
        }
        Err(_) => figures.check(false, "the killed consumer's entries were never claimed"),
    }
    figures.check(
        survivor.pid.is_alive(),
        "the surviving consumer is not running",
    );
    let audit = scenarios::settle_and_audit(
        size,
        stack,
        &report.ledger,
        &HashSet::new(),
        kill_at,
        None,
        &mut figures,
    )
    .await?;
    figures.with_audit(&audit);
    drop(survivor);
    Ok(figures)
}

/// A second consumer started like the runtime's, under another name and port; killed on drop.
struct SecondConsumer {
    pid: votectl::local::process::Pid,
}

impl SecondConsumer {
    fn start(launch: &Launch, port: u16, logs: &std::path::Path) -> anyhow::Result<Self> {
        use vote_contract::settings::var;
        let mut command = launch.command();
        command
            .env(var::POD_NAME, SURVIVOR)
            .env(var::PORT, port.to_string());
        let log = std::fs::File::create(logs.join("consumer-second.log"))?;
        command
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let mut child = command.spawn()?;
        let raw = child.id().unwrap_or(0);
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let pid = votectl::local::process::Pid::of(raw).unwrap_or(votectl::local::process::Pid {
            pid: raw,
            start_ticks: 0,
        });
        Ok(Self { pid })
    }
}

impl Drop for SecondConsumer {
    fn drop(&mut self) {
        self.pid.signal(Signal::SIGKILL);
    }
}
