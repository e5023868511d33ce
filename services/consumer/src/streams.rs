//! The Redis side: joining the consumer group, reading (new, own pending, abandoned) entries,
//! finishing a batch (dead letters + acknowledgement) and trimming what every group acknowledged.
//!
//! Invariants: the read connection has a response timeout longer than the `BLOCK` it asks for (the
//! client's default 500 ms would cut every blocking read short); a batch's dead letters and its
//! `XACK` go in one `MULTI`, so an entry is never acknowledged without its dead letter; the stream is
//! only ever trimmed below the oldest entry some group has not acknowledged.

use std::cmp::Ordering;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::streams::{StreamInfoGroupsReply, StreamPendingReply};
use redis::{AsyncConnectionConfig, RedisError, Value};
use vote_contract::stream::{DEAD_LETTER_STREAM, GROUP, STREAM};

use crate::entries::{DeadLetter, RawEntry, ReplyError, parse_autoclaim_reply, parse_read_reply};

/// Approximate cap of the dead-letter stream, so that a flood of junk cannot exhaust Redis memory.
pub const DEAD_LETTER_MAXLEN: usize = 100_000;
/// Longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much longer than its `BLOCK` a read may take to answer before the connection is presumed dead.
pub const RESPONSE_MARGIN: Duration = Duration::from_secs(10);

/// Why Redis did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error(transparent)]
    Reply(#[from] ReplyError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stream id `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const ZERO: Self = Self { ms: 0, seq: 0 };

    /// The smallest id greater than this one.
    pub fn next(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl std::str::FromStr for StreamId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        match (ms.parse(), seq.parse()) {
            (Ok(ms), Ok(seq)) => Ok(Self { ms, seq }),
            _ => Err(format!("{s:?} is not a stream id")),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The worker's connection to the stream, (re)established lazily: any failed command drops it, and
/// the next command reconnects and makes sure the group exists (Redis may have restarted empty).
pub struct StreamClient {
    client: redis::Client,
    consumer: String,
    config: AsyncConnectionConfig,
    conn: Option<MultiplexedConnection>,
    /// `CLIENT ID` of `conn`, to unblock its read from another connection at shutdown.
    client_id: Option<i64>,
}

impl std::fmt::Debug for StreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamClient")
            .field("consumer", &self.consumer)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl StreamClient {
    /// A client for `url` reading as `consumer`, with reads blocking at most `block`.
    pub fn new(url: &str, consumer: impl Into<String>, block: Duration) -> Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            consumer: consumer.into(),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(block + RESPONSE_MARGIN)),
            conn: None,
            client_id: None,
        })
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Forgets the connection; the next command opens a new one.
    pub fn disconnect(&mut self) {
        self.conn = None;
        self.client_id = None;
    }

    /// Connects (if needed) and joins the group.
    pub async fn connect(&mut self) -> Result<&mut MultiplexedConnection> {
        if self.conn.is_none() {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            ensure_group(&mut conn).await?;
            let id: i64 = redis::cmd("CLIENT")
                .arg("ID")
                .query_async(&mut conn)
                .await?;
            self.conn = Some(conn);
            self.client_id = Some(id);
        }
        Ok(self.conn.as_mut().expect("set just above"))
    }

    async fn run<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T> {
        let conn = self.connect().await?;
        match cmd.query_async(conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.disconnect();
                Err(e.into())
            }
        }
    }

    /// Up to `count` entries never delivered to the group, waiting up to `block` for the first
    /// (`None`: answer at once, possibly with nothing).
    pub async fn read_new(
        &mut self,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<RawEntry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            // BLOCK 0 would mean forever.
            cmd.arg("BLOCK")
                .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        cmd.arg("STREAMS").arg(STREAM).arg(">");
        let reply: Value = self.run(&cmd).await?;
        Ok(parse_read_reply(reply)?)
    }

    /// Ends a blocking read in progress on the worker's connection now, as if its `BLOCK` had run
    /// out (`CLIENT UNBLOCK`, sent on a short-lived connection of its own). Commands queued behind the
    /// read then run at once instead of after the full block. Best effort: on failure the read simply
    /// ends when its block does.
    pub async fn unblock(&self) {
        let Some(id) = self.client_id else { return };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)));
        let unblocked = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(id)
                .query_async::<i64>(&mut conn)
                .await
        };
        if let Err(e) = unblocked.await {
            tracing::debug!(error = %e, "could not unblock the read; waiting for its block to end");
        }
    }

    /// Up to `count` entries delivered to this consumer and not yet acknowledged, with ids above
    /// `after` (`0-0` for all): what a previous run of this consumer left behind.
    pub async fn read_pending(&mut self, after: StreamId, count: usize) -> Result<Vec<RawEntry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(after.to_string());
        let reply: Value = self.run(&cmd).await?;
        Ok(parse_read_reply(reply)?)
    }

    /// Claims up to `count` entries pending longer than `min_idle` in any consumer, scanning the
    /// pending list from `cursor`. Returns the next cursor (`0-0`: scan complete) and the claimed
    /// entries; entries that no longer exist are dropped from the pending list by Redis itself.
    pub async fn autoclaim(
        &mut self,
        min_idle: Duration,
        cursor: StreamId,
        count: usize,
    ) -> Result<(StreamId, Vec<RawEntry>)> {
        let idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(STREAM)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(idle_ms)
            .arg(cursor.to_string())
            .arg("COUNT")
            .arg(count);
        let reply: Value = self.run(&cmd).await?;
        let (next, entries, _deleted) = parse_autoclaim_reply(reply)?;
        let next = next.parse().unwrap_or(StreamId::ZERO);
        Ok((next, entries))
    }

    /// Writes the dead letters and acknowledges `ack`, atomically.
    pub async fn finish(&mut self, dead: &[DeadLetter], ack: &[String]) -> Result<()> {
        if dead.is_empty() && ack.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for letter in dead {
            let cmd = pipe
                .cmd("XADD")
                .arg(DEAD_LETTER_STREAM)
                .arg("MAXLEN")
                .arg("~")
                .arg(DEAD_LETTER_MAXLEN)
                .arg("*");
            for (field, value) in &letter.fields {
                cmd.arg(*field).arg(value);
            }
            cmd.ignore();
        }
        if !ack.is_empty() {
            pipe.cmd("XACK").arg(STREAM).arg(GROUP).arg(ack).ignore();
        }
        let conn = self.connect().await?;
        match pipe.query_async::<()>(conn).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.disconnect();
                Err(e.into())
            }
        }
    }

    /// Trims the stream below the oldest entry some group has not acknowledged; see [`trim`].
    pub async fn trim(&mut self) -> Result<Trimmed> {
        let conn = self.connect().await?;
        match trim(conn).await {
            Ok(t) => Ok(t),
            Err(e) => {
                self.disconnect();
                Err(e)
            }
        }
    }
}

/// `XGROUP CREATE votes vote-consumers 0 MKSTREAM`; an existing group is fine.
pub async fn ensure_group<C: ConnectionLike + Send>(conn: &mut C) -> Result<()> {
    let created: Result<(), RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
        _ => Ok(()),
    }
}

/// What a trim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed {
    /// Entries below this id were removed (`None`: the stream has no group, nothing was trimmed).
    pub min_id: Option<StreamId>,
    pub removed: u64,
}

/// The lowest id any group still needs: for each group, its oldest pending entry, or else the first
/// entry after its last delivered one.
///
/// Group info is read before the pending lists. That order is what makes the bound safe without a
/// lock: an entry below `last-delivered-id + 1` was delivered before the group info was read, so if it
/// is still unacknowledged when the trim runs, it was already pending when the pending list was read,
/// and the bound is at or below it.
pub async fn trim_bound<C: ConnectionLike + Send>(conn: &mut C) -> Result<Option<StreamId>> {
    let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query_async(conn)
        .await?;
    let mut bound: Option<StreamId> = None;
    for group in &groups.groups {
        let delivered: StreamId = group
            .last_delivered_id
            .parse()
            .map_err(|detail| ReplyError {
                command: "XINFO GROUPS",
                detail,
            })?;
        let mut needed = delivered.next();
        if group.pending > 0 {
            let pending: StreamPendingReply = redis::cmd("XPENDING")
                .arg(STREAM)
                .arg(&group.name)
                .query_async(conn)
                .await?;
            if let StreamPendingReply::Data(data) = pending {
                let oldest: StreamId = data.start_id.parse().map_err(|detail| ReplyError {
                    command: "XPENDING",
                    detail,
                })?;
                needed = needed.min(oldest);
            }
        }
        bound = Some(bound.map_or(needed, |b| b.min(needed)));
    }
    Ok(bound)
}

/// `XTRIM votes MINID <bound>` with the bound of [`trim_bound`]: entries every group acknowledged go,
/// nothing else does. A stream without groups is left alone.
pub async fn trim<C: ConnectionLike + Send>(conn: &mut C) -> Result<Trimmed> {
    let Some(min_id) = trim_bound(conn).await? else {
        return Ok(Trimmed {
            min_id: None,
            removed: 0,
        });
    };
    if min_id.cmp(&StreamId { ms: 0, seq: 1 }) != Ordering::Greater {
        return Ok(Trimmed {
            min_id: Some(min_id),
            removed: 0,
        });
    }
    let removed: u64 = redis::cmd("XTRIM")
        .arg(STREAM)
        .arg("MINID")
        .arg(min_id.to_string())
        .query_async(conn)
        .await?;
    Ok(Trimmed {
        min_id: Some(min_id),
        removed,
    })
}

/// The consumer group as the metrics show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Entries in the stream not yet delivered to the group.
    pub lag: u64,
    /// Entries delivered to the group and not yet acknowledged.
    pub pending: u64,
    /// Entries in `votes` (acknowledged ones stay until the next trim).
    pub stream_length: u64,
    /// Entries in `votes:dead`.
    pub dead_letter_length: u64,
}

/// Reads [`GroupStats`]. The lag is Redis's own (`XINFO GROUPS`); when Redis cannot tell it (after
/// deletions inside the stream), it is estimated as the stream length minus the pending entries.
pub async fn group_stats<C: ConnectionLike + Send>(conn: &mut C) -> Result<GroupStats> {
    let (stream_length, dead_letter_length): (u64, u64) = redis::pipe()
        .cmd("XLEN")
        .arg(STREAM)
        .cmd("XLEN")
        .arg(DEAD_LETTER_STREAM)
        .query_async(conn)
        .await?;
    let mut stats = GroupStats {
        stream_length,
        dead_letter_length,
        ..GroupStats::default()
    };
    if stream_length == 0 {
        // `XINFO GROUPS` fails on a missing key; an empty stream has neither lag nor pending entries
        // that matter (a pending entry of a deleted stream cannot be read anyway).
        let exists: bool = redis::cmd("EXISTS").arg(STREAM).query_async(conn).await?;
        if !exists {
            return Ok(stats);
        }
    }
    let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query_async(conn)
        .await?;
    if let Some(group) = groups.groups.iter().find(|g| g.name == GROUP) {
        stats.pending = group.pending as u64;
        stats.lag = match group.lag {
            Some(lag) => lag as u64,
            None => stream_length.saturating_sub(stats.pending),
        };
    } else {
        stats.lag = stream_length;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_and_step_like_redis() {
        let a: StreamId = "1700000000000-9".parse().unwrap();
        let b: StreamId = "1700000000001-0".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.next().to_string(), "1700000000000-10");
        assert_eq!(
            StreamId {
                ms: 5,
                seq: u64::MAX
            }
            .next(),
            StreamId { ms: 6, seq: 0 }
        );
        assert_eq!("0".parse::<StreamId>().unwrap(), StreamId::ZERO);
        assert!("x-1".parse::<StreamId>().is_err());
    }
}
