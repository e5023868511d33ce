//! What `votectl trace` looks at: the stream, the consumer group and the dead letters in Redis, the
//! processed votes in PostgreSQL, and the results stream of the API.
//!
//! Invariants: every probe answers within [`PROBE_TIMEOUT`] (a store that hangs is reported, never
//! waited on forever); a failed probe drops its connection and the next probe reconnects (at most once
//! per [`RECONNECT_EVERY`]), so a store that comes back is seen again; nothing here writes to a store.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamInfoConsumersReply, StreamInfoGroup, StreamInfoGroupsReply, StreamPendingCountReply,
    StreamRangeReply,
};
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;
use vote_contract::db;
use vote_contract::http::{RESULTS_EVENT, ResultsResponse, path};
use vote_contract::stream::{DEAD_LETTER_STREAM, GROUP, STREAM, dead_field, field};

use crate::api::{self, Api};
use crate::sse;

/// Longest any single look may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Least time between two attempts to connect to a store that refused.
pub const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// A stream id `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl FromStr for EntryId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        match (ms.parse(), seq.parse()) {
            (Ok(ms), Ok(seq)) => Ok(Self { ms, seq }),
            _ => Err(format!("{s:?} is not a stream id")),
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A dead-letter entry, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: String,
    pub source_id: String,
    pub reason: String,
    /// The refused entry's `request_id`, when its payload had one.
    pub request_id: Option<String>,
    /// The refused entry's `option`, when its payload had one.
    pub option: Option<String>,
    /// Whether this is the traced vote.
    pub ours: bool,
}

impl DeadLetter {
    fn from_entry(id: String, map: &HashMap<String, redis::Value>) -> Self {
        let text = |name: &str| map.get(name).map(value_text).unwrap_or_default();
        let payload: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text(dead_field::PAYLOAD)).unwrap_or_default();
        let payload_field = |name: &str| {
            payload
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Self {
            id,
            source_id: text(dead_field::SOURCE_ID),
            reason: text(dead_field::REASON),
            request_id: payload_field(field::REQUEST_ID),
            option: payload_field(field::OPTION),
            ours: false,
        }
    }

    /// Whether this letter is about the entry `id` with `request_id`.
    pub fn is_about(&self, id: &str, request_id: Uuid) -> bool {
        self.source_id == id || self.request_id.as_deref() == Some(&request_id.to_string())
    }
}

fn value_text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

/// The consumer group as Redis describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    pub name: String,
    pub consumers: usize,
    pub pending: usize,
    pub last_delivered_id: String,
    /// Entries not yet delivered to the group (Redis 7; unknown after deletions inside the stream).
    pub lag: Option<usize>,
}

impl From<&StreamInfoGroup> for GroupInfo {
    fn from(g: &StreamInfoGroup) -> Self {
        Self {
            name: g.name.clone(),
            consumers: g.consumers,
            pending: g.pending,
            last_delivered_id: g.last_delivered_id.clone(),
            lag: g.lag,
        }
    }
}

impl GroupInfo {
    /// Whether the group has read past (or up to) `id`.
    pub fn delivered(&self, id: EntryId) -> bool {
        self.last_delivered_id
            .parse::<EntryId>()
            .is_ok_and(|last| last.cmp(&id) != Ordering::Less)
    }
}

/// One consumer of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerInfo {
    pub name: String,
    pub pending: usize,
    /// Milliseconds since it last read or claimed anything.
    pub idle_ms: usize,
}

/// The traced entry in the group's pending list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingEntry {
    pub consumer: String,
    /// Milliseconds since it was last delivered.
    pub idle_ms: usize,
    pub deliveries: usize,
}

/// Redis, as the trace looks at it.
pub struct RedisProbe {
    url: String,
    client: Option<redis::Client>,
    conn: Option<MultiplexedConnection>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl fmt::Debug for RedisProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisProbe")
            .field("url", &self.url)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisProbe {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            client: redis::Client::open(url).ok(),
            conn: None,
            last_attempt: None,
            last_error: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn conn(&mut self) -> Result<&mut MultiplexedConnection, String> {
        if self.conn.is_none() {
            let Some(client) = &self.client else {
                return Err(format!("{} is not a Redis URL", self.url));
            };
            if let Some(last) = self.last_attempt
                && last.elapsed() < RECONNECT_EVERY
            {
                return Err(self
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not connected".to_owned()));
            }
            self.last_attempt = Some(Instant::now());
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(PROBE_TIMEOUT))
                .set_response_timeout(Some(PROBE_TIMEOUT));
            match client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => {
                    let why = redis_error(&e);
                    self.last_error = Some(why.clone());
                    return Err(why);
                }
            }
        }
        self.conn.as_mut().ok_or_else(|| "not connected".to_owned())
    }

    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, String> {
        let conn = self.conn().await?;
        match cmd.query_async(conn).await {
            Ok(value) => Ok(value),
            Err(e) => {
                // A reply Redis refused (a missing key, a missing group) says nothing about the link.
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                    self.conn = None;
                }
                Err(redis_error(&e))
            }
        }
    }

    /// The fields of entry `id` of the votes stream, if it is there.
    pub async fn entry(&mut self, id: EntryId) -> Result<Option<HashMap<String, String>>, String> {
        let reply: StreamRangeReply = self
            .query(
                redis::cmd("XRANGE")
                    .arg(STREAM)
                    .arg(id.to_string())
                    .arg(id.to_string()),
            )
            .await?;
        Ok(reply.ids.into_iter().next().map(|entry| {
            entry
                .map
                .iter()
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect()
        }))
    }

    /// The consumer group, or `None` when the stream or the group does not exist.
    pub async fn group(&mut self) -> Result<Option<GroupInfo>, String> {
        let exists: bool = self.query(redis::cmd("EXISTS").arg(STREAM)).await?;
        if !exists {
            return Ok(None);
        }
        let reply: StreamInfoGroupsReply = self
            .query(redis::cmd("XINFO").arg("GROUPS").arg(STREAM))
            .await?;
        Ok(reply
            .groups
            .iter()
            .find(|g| g.name == GROUP)
            .map(GroupInfo::from))
    }

    /// The traced entry in the group's pending list, if it is there (the group must exist).
    pub async fn pending_entry(&mut self, id: EntryId) -> Result<Option<PendingEntry>, String> {
        let reply: StreamPendingCountReply = self
            .query(
                redis::cmd("XPENDING")
                    .arg(STREAM)
                    .arg(GROUP)
                    .arg(id.to_string())
                    .arg(id.to_string())
                    .arg(1),
            )
            .await?;
        Ok(reply.ids.into_iter().next().map(|p| PendingEntry {
            consumer: p.consumer,
            idle_ms: p.last_delivered_ms,
            deliveries: p.times_delivered,
        }))
    }

    /// The consumers of the group (the group must exist).
    pub async fn consumers(&mut self) -> Result<Vec<ConsumerInfo>, String> {
        let reply: StreamInfoConsumersReply = self
            .query(redis::cmd("XINFO").arg("CONSUMERS").arg(STREAM).arg(GROUP))
            .await?;
        Ok(reply
            .consumers
            .into_iter()
            .map(|c| ConsumerInfo {
                name: c.name,
                pending: c.pending,
                idle_ms: c.idle,
            })
            .collect())
    }

    /// Lengths of the votes stream and of the dead-letter stream.
    pub async fn lengths(&mut self) -> Result<(u64, u64), String> {
        let votes: u64 = self.query(redis::cmd("XLEN").arg(STREAM)).await?;
        let dead: u64 = self
            .query(redis::cmd("XLEN").arg(DEAD_LETTER_STREAM))
            .await?;
        Ok((votes, dead))
    }

    /// Dead letters with ids above `after` (exclusive), oldest first, at most `count`.
    pub async fn dead_letters_after(
        &mut self,
        after: EntryId,
        count: usize,
    ) -> Result<Vec<DeadLetter>, String> {
        let reply: StreamRangeReply = self
            .query(
                redis::cmd("XRANGE")
                    .arg(DEAD_LETTER_STREAM)
                    .arg(format!("({after}"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|e| DeadLetter::from_entry(e.id, &e.map))
            .collect())
    }

    /// The newest `count` dead letters, newest first.
    pub async fn newest_dead_letters(&mut self, count: usize) -> Result<Vec<DeadLetter>, String> {
        let reply: StreamRangeReply = self
            .query(
                redis::cmd("XREVRANGE")
                    .arg(DEAD_LETTER_STREAM)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|e| DeadLetter::from_entry(e.id, &e.map))
            .collect())
    }
}

/// A Redis error as one line: "connection refused" rather than the library's wording.
fn redis_error(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", super::human(PROBE_TIMEOUT));
    }
    if e.is_connection_refusal() {
        return "connection refused".to_owned();
    }
    e.to_string()
}

/// PostgreSQL, as the trace looks at it.
pub struct PostgresProbe {
    config: tokio_postgres::Config,
    display: String,
    client: Option<tokio_postgres::Client>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl fmt::Debug for PostgresProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresProbe")
            .field("at", &self.display)
            .field("connected", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

/// The traced vote as PostgreSQL has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The option the processed-votes row holds.
    pub option: String,
    /// The option's count right after the row was seen (it includes this vote).
    pub count: u64,
}

impl PostgresProbe {
    /// `display` names the server in messages (never with a password).
    pub fn new(mut config: tokio_postgres::Config, display: String) -> Self {
        config.connect_timeout(PROBE_TIMEOUT);
        Self {
            config,
            display,
            client: None,
            last_attempt: None,
            last_error: None,
        }
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    async fn client(&mut self) -> Result<&tokio_postgres::Client, String> {
        if self
            .client
            .as_ref()
            .is_some_and(tokio_postgres::Client::is_closed)
        {
            self.client = None;
        }
        if self.client.is_none() {
            if let Some(last) = self.last_attempt
                && last.elapsed() < RECONNECT_EVERY
            {
                return Err(self
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not connected".to_owned()));
            }
            self.last_attempt = Some(Instant::now());
            let connected =
                tokio::time::timeout(PROBE_TIMEOUT, self.config.connect(tokio_postgres::NoTls))
                    .await;
            match connected {
                Ok(Ok((client, connection))) => {
                    tokio::spawn(async move {
                        // Ends when the client is dropped or the server goes; the next query says so.
                        let _ = connection.await;
                    });
                    self.client = Some(client);
                }
                Ok(Err(e)) => {
                    let why = postgres_error(&e);
                    self.last_error = Some(why.clone());
                    return Err(why);
                }
                Err(_) => {
                    let why = format!("no answer within {}", super::human(PROBE_TIMEOUT));
                    self.last_error = Some(why.clone());
                    return Err(why);
                }
            }
        }
        self.client
            .as_ref()
            .ok_or_else(|| "not connected".to_owned())
    }

    /// Whether `request_id` was counted: its processed-votes row and the option's count.
    pub async fn counted(&mut self, request_id: Uuid) -> Result<Option<Counted>, String> {
        let client = self.client().await?;
        let looked = tokio::time::timeout(PROBE_TIMEOUT, async {
            let Some(option) = db::processed_option(client, request_id).await? else {
                return Ok(None);
            };
            let (counts, _) = db::read_counts(client).await?;
            let count = counts
                .iter()
                .find(|(o, _)| *o == option)
                .map_or(0, |(_, c)| *c);
            Ok::<_, db::Error>(Some(Counted { option, count }))
        })
        .await;
        match looked {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => {
                self.client = None;
                Err(db_error(&e))
            }
            Err(_) => {
                self.client = None;
                Err(format!("no answer within {}", super::human(PROBE_TIMEOUT)))
            }
        }
    }

    /// Checks that PostgreSQL answers (for the evidence).
    pub async fn ping(&mut self) -> Result<(), String> {
        let client = self.client().await?;
        match tokio::time::timeout(PROBE_TIMEOUT, client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                self.client = None;
                Err(postgres_error(&e))
            }
            Err(_) => {
                self.client = None;
                Err(format!("no answer within {}", super::human(PROBE_TIMEOUT)))
            }
        }
    }
}

/// The innermost cause of a PostgreSQL error, e.g. `connection refused`.
fn postgres_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

fn db_error(e: &db::Error) -> String {
    match e {
        db::Error::Postgres(e) => postgres_error(e),
        other => other.to_string(),
    }
}

/// What the results stream delivered, with when it arrived.
#[derive(Debug, Clone)]
pub enum FeedItem {
    Results(Instant, ResultsResponse),
    /// The stream could not be opened, or it ended.
    Ended(String),
}

/// Follows `GET /api/results/stream` on a task of its own; every `results` event (the first one is
/// sent on connect) and the stream's end arrive on the returned channel. Dropping the receiver ends
/// the task at its next event.
pub fn subscribe(api: &Api) -> mpsc::UnboundedReceiver<FeedItem> {
    let (tx, rx) = mpsc::unbounded_channel();
    let api = api.clone();
    tokio::spawn(async move {
        let ended = follow(&api, &tx).await;
        let _ = tx.send(FeedItem::Ended(ended));
    });
    rx
}

async fn follow(api: &Api, tx: &mpsc::UnboundedSender<FeedItem>) -> String {
    let url = api.url(path::RESULTS_STREAM);
    let response = match api
        .http()
        .get(&url)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => return format!("GET {url}: {}", api::root_cause(&e)),
    };
    if !response.status().is_success() {
        return format!("GET {url} answered {}", response.status());
    }
    let mut parser = sse::Parser::default();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return format!("{url}: {}", api::root_cause(&e)),
        };
        for event in parser.feed(&chunk) {
            if event.event != RESULTS_EVENT {
                continue;
            }
            match serde_json::from_str::<ResultsResponse>(&event.data) {
                Ok(results) => {
                    if tx.send(FeedItem::Results(Instant::now(), results)).is_err() {
                        return "no longer followed".to_owned();
                    }
                }
                Err(e) => {
                    return format!("a `{RESULTS_EVENT}` event from {url} is not results: {e}");
                }
            }
        }
    }
    format!("{url}: the stream ended")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_order_like_redis() {
        let a: EntryId = "1700000000000-9".parse().unwrap();
        let b: EntryId = "1700000000000-10".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "1700000000000-9");
        assert!("x".parse::<EntryId>().is_err());
        let group = GroupInfo {
            name: GROUP.into(),
            consumers: 1,
            pending: 0,
            last_delivered_id: "1700000000000-9".into(),
            lag: Some(0),
        };
        assert!(group.delivered(a));
        assert!(!group.delivered(b));
    }

    #[test]
    fn dead_letters_are_matched_by_source_or_request_id() {
        let id = Uuid::new_v4();
        let original = HashMap::from([
            (
                field::OPTION.to_owned(),
                redis::Value::BulkString(b"dogs".to_vec()),
            ),
            (
                field::REQUEST_ID.to_owned(),
                redis::Value::BulkString(id.to_string().into_bytes()),
            ),
        ]);
        let reason = vote_contract::stream::DecodeError::UnknownOption("dogs".into());
        let fields = vote_contract::stream::dead_letter_fields("5-0", &reason, &original);
        let map: HashMap<String, redis::Value> = fields
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    redis::Value::BulkString(v.clone().into_bytes()),
                )
            })
            .collect();
        let letter = DeadLetter::from_entry("9-0".into(), &map);
        assert_eq!(letter.reason, "option \"dogs\" is not configured");
        assert_eq!(letter.option.as_deref(), Some("dogs"));
        assert!(letter.is_about("5-0", Uuid::new_v4()));
        assert!(letter.is_about("1-0", id));
        assert!(!letter.is_about("1-0", Uuid::new_v4()));
    }
}
