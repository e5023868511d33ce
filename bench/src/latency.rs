//! Vote → SSE latency: from the 201 of `POST /api/vote` to the `results` event on
//! `/api/results/stream` that includes the vote, one vote at a time through the real API, consumer
//! and feed. Its raw limit, measured on the same servers: the hops the pipeline cannot avoid with no
//! service in between — an `XADD` waking a blocked `XREAD`, whose reader commits a `pg_notify` that a
//! `LISTEN`ing connection receives.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};
use vote_contract::http::{RESULTS_EVENT, ResultsResponse, VoteRequest, path};

/// Median and 99th percentile of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub samples: usize,
}

/// Nearest-rank percentiles of `samples` (milliseconds).
pub fn percentiles(mut samples: Vec<f64>) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let rank = |p: f64| -> f64 {
        if samples.is_empty() {
            return f64::NAN;
        }
        let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i]
    };
    Percentiles {
        p50_ms: rank(0.50),
        p99_ms: rank(0.99),
        samples: samples.len(),
    }
}

/// Follows the SSE stream at `url`, publishing each `results` event's `total_votes`.
async fn follow(response: reqwest::Response, totals: watch::Sender<Option<u64>>) {
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = if name.trim() == RESULTS_EVENT {
                        RESULTS_EVENT
                    } else {
                        "other"
                    };
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            if event == RESULTS_EVENT
                && let Ok(results) = serde_json::from_str::<ResultsResponse>(&data)
            {
                totals.send_replace(Some(results.total_votes));
            }
        }
    }
}

/// How long to wait after a vote showed before sending the next: longer than the feed's coalescing
/// window (100 ms), so each vote is measured on its own rather than queued behind the previous one's
/// window (which is what back-to-back votes would measure instead).
pub const GAP: Duration = Duration::from_millis(150);

/// `votes` votes one after the other, [`GAP`] apart; for each, the time from its 201 to the event
/// showing it.
pub async fn vote_to_sse(api: &str, votes: u32) -> anyhow::Result<Percentiles> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let response = http
        .get(format!("{api}{}", path::RESULTS_STREAM))
        .send()
        .await?
        .error_for_status()?;
    let (tx, mut rx) = watch::channel(None);
    let follower = tokio::spawn(follow(response, tx));
    let base = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(Option::is_some))
        .await
        .context("no first results event within 10 s")??
        .unwrap_or(0);
    let mut samples = Vec::with_capacity(votes as usize);
    for i in 1..=u64::from(votes) {
        let reply = http
            .post(format!("{api}{}", path::VOTE))
            .json(&VoteRequest {
                option: if i % 2 == 0 { "cats" } else { "dogs" }.to_owned(),
            })
            .send()
            .await?;
        let acknowledged = Instant::now();
        if reply.status() != reqwest::StatusCode::CREATED {
            bail!("vote {i} got {}", reply.status());
        }
        let want = base + i;
        tokio::time::timeout(
            Duration::from_secs(30),
            rx.wait_for(|t| t.is_some_and(|t| t >= want)),
        )
        .await
        .with_context(|| format!("vote {i} never showed in the stream"))??;
        samples.push(acknowledged.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(GAP).await;
    }
    follower.abort();
    Ok(percentiles(samples))
}

/// The raw hops, `rounds` times: XADD → blocked XREAD wakes → `pg_notify` committed → LISTEN gets it.
pub async fn raw_hops(redis_url: &str, pg_url: &str, rounds: u32) -> anyhow::Result<Percentiles> {
    const KEY: &str = "bench:raw:latency";
    const CHANNEL: &str = "bench_raw_latency";
    let client = redis::Client::open(redis_url)?;
    let mut writer = client.get_multiplexed_async_connection().await?;
    // A blocking read must not be cut off by the default response timeout.
    let mut blocked = client
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await?;
    let (notifier, connection) = tokio_postgres::connect(pg_url, NoTls).await?;
    tokio::spawn(connection);
    let (listener, mut connection) = tokio_postgres::connect(pg_url, NoTls).await?;
    let (tx, mut notes) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    listener.batch_execute(&format!("LISTEN {CHANNEL}")).await?;

    let reader = tokio::spawn(async move {
        let mut last = "0-0".to_owned();
        loop {
            let reply: redis::streams::StreamReadReply = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(10_000)
                .arg("COUNT")
                .arg(1)
                .arg("STREAMS")
                .arg(KEY)
                .arg(&last)
                .query_async(&mut blocked)
                .await?;
            for entry in reply.keys.iter().flat_map(|k| &k.ids) {
                last.clone_from(&entry.id);
                notifier
                    .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &entry.id])
                    .await
                    .map_err(|e| redis::RedisError::from(std::io::Error::other(e)))?;
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), redis::RedisError>(())
    });
    let mut samples = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let started = Instant::now();
        let id: String = redis::cmd("XADD")
            .arg(KEY)
            .arg("*")
            .arg("v")
            .arg("1")
            .query_async(&mut writer)
            .await?;
        loop {
            let got = tokio::time::timeout(Duration::from_secs(10), notes.recv())
                .await
                .context("no notification within 10 s")?
                .context("the listener stopped")?;
            if got == id {
                break;
            }
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    reader.abort();
    Ok(percentiles(samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!((p.p50_ms, p.p99_ms, p.samples), (50.0, 99.0, 100));
        let p = percentiles(vec![3.0]);
        assert_eq!((p.p50_ms, p.p99_ms), (3.0, 3.0));
        assert!(percentiles(Vec::new()).p50_ms.is_nan());
    }
}
