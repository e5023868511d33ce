//! Helpers shared by the API's integration tests: settings pointing at real test servers, a running
//! API on a free port, a minimal Server-Sent Events reader, and polling with a deadline.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vote_api::{Application, Settings};
use vote_contract::settings::{Env, var};

/// How long any eventually-true condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Settings for servers at `redis_url` and `database_url`, on an ephemeral port.
pub fn settings(redis_url: &str, database_url: &str, options: &str) -> Settings {
    let env = Env::from_pairs([
        (var::REDIS_URL, redis_url),
        (var::DATABASE_URL, database_url),
        (var::VOTE_OPTIONS, options),
    ]);
    let mut settings = Settings::from_env(&env).unwrap();
    settings.port = 0;
    settings
}

/// A URL where nothing listens (a port that was free a moment ago).
pub fn dead_url(scheme: &str) -> String {
    let port = vote_testkit::free_port();
    match scheme {
        "postgres" => format!("postgres://postgres@127.0.0.1:{port}/votes"),
        _ => format!("{scheme}://127.0.0.1:{port}"),
    }
}

/// An API served on 127.0.0.1:<port> until [`TestApp::stop`] or drop.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<vote_api::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(settings: Settings) -> Self {
        let app = Application::build(settings).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        // A read timeout, not a total one: result streams stay open for as long as a test needs.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(DEADLINE + Duration::from_secs(5))
            .build()
            .unwrap();
        Self {
            base,
            http,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn vote(&self, option: &str) -> reqwest::Response {
        self.http
            .post(self.url(vote_contract::http::path::VOTE))
            .json(&serde_json::json!({ "option": option }))
            .send()
            .await
            .unwrap()
    }

    /// Asks the server to stop and waits (bounded) for `run_until_stopped` to return.
    pub async fn stop(mut self) -> vote_api::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("the server drains and stops in time")
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Reads events from a `text/event-stream` response; comment lines (keep-alives) are skipped.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ended. Fails the test after [`DEADLINE`].
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(DEADLINE, self.next_inner())
            .await
            .expect("an event (or the end of the stream) in time")
    }

    async fn next_inner(&mut self) -> Option<SseEvent> {
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
                if event.is_none() && data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Some(Err(_)) | None => return None,
            }
        }
    }
}
