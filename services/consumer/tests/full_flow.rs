//! The whole pipeline with real parts: `POST /api/vote` on the real API → the `votes` stream → this
//! consumer → `GET /api/results`, and the API's Server-Sent Events stream pushing the new count.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures::StreamExt;
use vote_contract::http::{RESULTS_EVENT, ResultsResponse, VoteResponse, path};
use vote_contract::settings::{Env, var};

/// Server-Sent Events read off a response body: `(event, data)` pairs.
struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: response
                .bytes_stream()
                .map(|c| c.map(|b| b.to_vec()))
                .boxed(),
            buffer: String::new(),
        }
    }

    /// The next event that has data (keep-alive comments are skipped).
    async fn next(&mut self) -> (Option<String>, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim_start().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if !data.is_empty() {
                    return (event, data.join("\n"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.body.next())
                .await
                .expect("an event in time")
                .expect("the stream stays open")
                .unwrap();
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }
}

#[tokio::test]
async fn a_vote_posted_to_the_api_is_counted_and_pushed_to_the_results_stream() {
    let servers = Servers::start().await;
    let api_settings = vote_api::Settings::from_env(&Env::from_pairs([
        (var::PORT, "0".to_owned()),
        (var::REDIS_URL, servers.redis.url()),
        (var::DATABASE_URL, servers.db_url.clone()),
    ]))
    .unwrap();
    let api = vote_api::Application::build(api_settings).await.unwrap();
    let api_base = format!("http://127.0.0.1:{}", api.port());
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_task = tokio::spawn(api.run_until_stopped(async move {
        let _ = api_stopped.await;
    }));
    let consumer = Running::start(servers.settings("consumer-0")).await;
    let http = reqwest::Client::new();

    // Subscribe first: the event on connect shows no votes yet.
    let mut events = Events::new(
        http.get(format!("{api_base}{}", path::RESULTS_STREAM))
            .send()
            .await
            .unwrap(),
    );
    let (event, data) = events.next().await;
    assert_eq!(event.as_deref(), Some(RESULTS_EVENT));
    let initial: ResultsResponse = serde_json::from_str(&data).unwrap();
    assert_eq!(initial.total_votes, 0);

    let posted = http
        .post(format!("{api_base}{}", path::VOTE))
        .json(&serde_json::json!({"option": "dogs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let posted: VoteResponse = posted.json().await.unwrap();
    assert_eq!(posted.option, "dogs");

    // The consumer's NOTIFY makes the API push the new count.
    let pushed = loop {
        let (event, data) = events.next().await;
        assert_eq!(event.as_deref(), Some(RESULTS_EVENT));
        let results: ResultsResponse = serde_json::from_str(&data).unwrap();
        if results.total_votes > 0 {
            break results;
        }
    };
    assert_eq!(pushed.count("dogs"), Some(1));
    assert_eq!(pushed.count("cats"), Some(0));
    assert_eq!(pushed.total_votes, 1);
    assert!(pushed.last_updated.is_some());

    let results: ResultsResponse = http
        .get(format!("{api_base}{}", path::RESULTS))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(results, pushed);

    // The entry the API wrote is the one the consumer counted and acknowledged.
    let db = servers.db().await;
    let stream_id: String = db
        .query_one("SELECT stream_id FROM processed_votes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stream_id, posted.stream_id);
    wait_all_acked(&servers.redis().await).await;

    consumer.stop().await;
    let _ = stop_api.send(());
    api_task.await.unwrap().unwrap();
}
