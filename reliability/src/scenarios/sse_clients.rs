//! Many clients on `GET /api/results/stream` while votes flow. Proven: every client's latest `results`
//! event ends up showing the final totals (the counts in PostgreSQL once every acknowledged vote is
//! counted). Measured: the API's resident memory before the clients connect, with them connected,
//! and after the votes; the difference per client.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;
use vote_contract::http::{RESULTS_EVENT, ResultsResponse, path};
use votectl::local::Component;

use crate::figures::Figures;
use crate::load::{self, LoadConfig, Progress, Voter};
use crate::procfs::rss_bytes;
use crate::stack::{LocalStack, wait_until};
use crate::{Ctx, audit, scenarios};

/// One client: follows the stream and publishes the latest results it saw.
async fn follow(
    http: reqwest::Client,
    url: String,
    latest: watch::Sender<Option<ResultsResponse>>,
    connected: Arc<AtomicUsize>,
) {
    let Ok(response) = http.get(&url).send().await else {
        return;
    };
    if !response.status().is_success() {
        return;
    }
    let mut first = true;
    let mut parser = votectl::sse::Parser::default();
    let mut body = response.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        for event in parser.feed(&chunk) {
            if event.event != RESULTS_EVENT {
                continue;
            }
            if let Ok(results) = serde_json::from_str::<ResultsResponse>(&event.data) {
                latest.send_replace(Some(results));
                if first {
                    first = false;
                    connected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub async fn run(ctx: &Ctx, stack: &LocalStack) -> anyhow::Result<Figures> {
    let size = &ctx.size;
    let mut figures = Figures::new("sse-clients");
    let api = stack.url(Component::Api)?;
    let api_pid = stack.pid(Component::Api)?.pid;
    let rss_before = rss_bytes(api_pid)?;

    let http = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let connected = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    let mut views = Vec::with_capacity(size.sse_clients);
    for _ in 0..size.sse_clients {
        let (tx, rx) = watch::channel(None);
        views.push(rx);
        clients.spawn(follow(
            http.clone(),
            format!("{api}{}", path::RESULTS_STREAM),
            tx,
            connected.clone(),
        ));
    }
    let all_connected = wait_until(Duration::from_secs(120), || async {
        connected.load(Ordering::Relaxed) >= size.sse_clients
    })
    .await;
    let n_connected = connected.load(Ordering::Relaxed);
    figures.check(
        all_connected.is_ok(),
        format!(
            "only {n_connected} of {} clients got their first event",
            size.sse_clients
        ),
    );
    let rss_connected = rss_bytes(api_pid)?;

    let options = stack.options()?;
    let voter = Voter::new(&api, size.concurrency)?;
    let mut config = LoadConfig::new(size.sse_votes);
    config.concurrency = size.concurrency;
    let report = load::run(&voter, &options, &config, &Progress::default()).await;
    let votes_end = Instant::now();
    let audit = scenarios::settle_and_audit(
        size,
        stack,
        &report.ledger,
        &HashSet::new(),
        votes_end,
        None,
        &mut figures,
    )
    .await?;
    figures.with_audit(&audit);

    let client = audit::connect(&stack.url(Component::Postgres)?).await?;
    let finals: Vec<(String, i64)> = client
        .query("SELECT option, count FROM vote_counts", &[])
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let shows_final = |r: &Option<ResultsResponse>| {
        r.as_ref().is_some_and(|r| {
            finals
                .iter()
                .all(|(o, c)| r.count(o) == u64::try_from(*c).ok())
        })
    };
    let everyone = wait_until(Duration::from_secs(60), || {
        let all = views.iter().all(|v| shows_final(&v.borrow()));
        async move { all }
    })
    .await;
    let seeing = views.iter().filter(|v| shows_final(&v.borrow())).count();
    let rss_after = rss_bytes(api_pid)?;
    clients.abort_all();

    figures.note(format!(
        "{seeing} of {} clients saw the final totals ({}), {:.2}s after the last vote was acknowledged",
        size.sse_clients,
        finals
            .iter()
            .map(|(o, c)| format!("{o} {c}"))
            .collect::<Vec<_>>()
            .join(", "),
        votes_end.elapsed().as_secs_f64()
    ));
    figures.check(
        everyone.is_ok(),
        format!(
            "{} clients never saw the final totals",
            size.sse_clients - seeing
        ),
    );
    let per_client = rss_connected.saturating_sub(rss_before) as f64 / n_connected.max(1) as f64;
    figures.note(format!(
        "API RSS: {:.1} MiB before, {:.1} MiB with {n_connected} clients connected, {:.1} MiB after the votes; \
         {:.1} KiB per client",
        mib(rss_before),
        mib(rss_connected),
        mib(rss_after),
        per_client / 1024.0
    ));
    Ok(figures)
}
