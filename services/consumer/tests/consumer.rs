//! The consumer against real Redis and PostgreSQL servers: exactly-once counting, NOTIFY, duplicates,
//! crashes between commit and ack, claiming, dead letters, outages, trimming and shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;
use vote_consumer::entries::route;
use vote_consumer::store::Store;
use vote_consumer::streams::{StreamClient, StreamId, trim};
use vote_contract::VoteOptions;
use vote_contract::db::NOTIFY_CHANNEL;
use vote_contract::stream::{DEAD_LETTER_STREAM, GROUP, STREAM, dead_field, field};

/// `LISTEN`s on `channel` on a connection of its own; notifications arrive on the receiver.
async fn listen(
    url: &str,
    channel: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<(String, String)> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await
        .unwrap();
    // Keep the client (and with it the session) alive as long as the receiver is used.
    tokio::spawn(async move {
        std::future::pending::<()>().await;
        drop(client);
    });
    rx
}

#[tokio::test]
async fn counts_each_vote_once_and_notifies_listeners() {
    let servers = Servers::start().await;
    let consumer = Running::start(servers.settings("c1")).await;
    let db = servers.db().await;
    // The consumer migrates before it reads: wait for the tables, then listen.
    eventually("options seeded", || async {
        db.query_opt("SELECT 1 FROM vote_counts WHERE option = 'dogs'", &[])
            .await
            .ok()
            .flatten()
    })
    .await;
    let mut notifications = listen(&servers.db_url, NOTIFY_CHANNEL).await;

    let mut redis = servers.redis().await;
    for option in ["dogs", "cats", "dogs", "dogs", "cats", "dogs"] {
        xadd(&mut redis, &vote(option)).await;
    }
    wait_total(&db, 6).await;
    wait_all_acked(&redis).await;
    let counts = counts(&db).await;
    assert_eq!(counts["dogs"], 4);
    assert_eq!(counts["cats"], 2);

    let mut notified = 0;
    while notified < 6 {
        let (channel, payload) = tokio::time::timeout(DEADLINE, notifications.recv())
            .await
            .expect("a NOTIFY for the counted votes")
            .unwrap();
        assert_eq!(channel, NOTIFY_CHANNEL);
        notified += payload.parse::<u64>().unwrap();
    }
    assert_eq!(notified, 6, "each counted vote is announced once");
    assert_eq!(consumer.metrics.processed.get(), 6);
    assert_eq!(consumer.metrics.acknowledged.get(), 6);
    consumer.stop().await;
}

#[tokio::test]
async fn a_request_id_is_counted_once_within_a_batch_and_across_batches() {
    let servers = Servers::start().await;
    let mut redis = servers.redis().await;
    let twice = Uuid::new_v4();
    // Written before the consumer starts: its first read returns all three in one batch.
    xadd(&mut redis, &vote_with_id("dogs", twice)).await;
    xadd(&mut redis, &vote_with_id("dogs", twice)).await;
    xadd(&mut redis, &vote("cats")).await;
    let consumer = Running::start(servers.settings("c1")).await;
    let db = servers.db().await;
    wait_all_acked(&redis).await;
    wait_total(&db, 2).await;
    assert_eq!(consumer.metrics.duplicates_skipped.get(), 1);

    // The same request id in a later batch (a retried POST with the same Idempotency-Key).
    xadd(&mut redis, &vote_with_id("dogs", twice)).await;
    wait_all_acked(&redis).await;
    eventually("the late duplicate skipped", || async {
        (consumer.metrics.duplicates_skipped.get() == 2).then_some(())
    })
    .await;
    assert_eq!(totals(&db).await, (2, 2));
    assert_eq!(counts(&db).await["dogs"], 1);
    consumer.stop().await;
}

#[tokio::test]
async fn a_backlog_drains_in_full_batches_read_ahead_and_counts_each_vote_once() {
    let servers = Servers::start().await;
    let mut redis = servers.redis().await;
    let repeated = Uuid::new_v4();
    let mut votes: Vec<_> = (0..200)
        .map(|i| vote(if i % 3 == 0 { "cats" } else { "dogs" }))
        .collect();
    // The same request id spread over several batches.
    for i in [5, 50, 150] {
        votes[i] = vote_with_id("cats", repeated);
    }
    xadd_atomically(&mut redis, &votes).await;
    xadd_fields(&mut redis, &[(field::OPTION, "dogs".into())]).await;
    xadd_atomically(&mut redis, &votes[..20]).await;

    let consumer = Running::start(vote_consumer::Settings {
        batch_size: 7,
        ..servers.settings("c1")
    })
    .await;
    let db = servers.db().await;
    wait_all_acked(&redis).await;
    wait_total(&db, 198).await;
    let counts = counts(&db).await;
    let cats = (0..200)
        .filter(|i| i % 3 == 0 && ![5, 50, 150].contains(i))
        .count();
    assert_eq!(counts["cats"], i64::try_from(cats + 1).unwrap());
    assert_eq!(consumer.metrics.processed.get(), 198);
    assert_eq!(consumer.metrics.duplicates_skipped.get(), 2 + 20);
    assert_eq!(consumer.metrics.dead_lettered.get(), 1);
    assert_eq!(consumer.metrics.acknowledged.get(), 221);
    consumer.stop().await;
}

#[tokio::test]
async fn the_store_counts_a_duplicate_inside_one_transaction_once() {
    let servers = Servers::start().await;
    let store = Store::new(servers.settings("c").postgres, VoteOptions::default());
    store.migrate().await.unwrap();
    let id = Uuid::new_v4();
    let entries = [
        ("1-0", vote_with_id("cats", id)),
        ("1-1", vote_with_id("cats", id)),
    ]
    .into_iter()
    .map(|(sid, entry)| vote_consumer::entries::Vote {
        stream_id: sid.to_owned(),
        entry,
    })
    .collect::<Vec<_>>();
    let first = store.commit(&entries).await.unwrap();
    assert_eq!((first.counted, first.duplicates), (1, 1));
    let again = store.commit(&entries).await.unwrap();
    assert_eq!((again.counted, again.duplicates), (0, 2));
    let db = servers.db().await;
    assert_eq!(totals(&db).await, (1, 1));
    let stream_id: String = db
        .query_one("SELECT stream_id FROM processed_votes", &[])
        .await
        .unwrap()
        .get(0);
    assert!(stream_id == "1-0" || stream_id == "1-1");
}

#[tokio::test]
async fn a_consumer_killed_between_commit_and_ack_does_not_count_twice() {
    let servers = Servers::start().await;
    let mut redis = servers.redis().await;
    let settings = servers.settings("consumer-0");
    for i in 0..20 {
        xadd(&mut redis, &vote(if i % 4 == 0 { "cats" } else { "dogs" })).await;
    }

    // The first life of consumer-0: read and commit, then "die" before XACK.
    let mut streams = StreamClient::new(&settings.redis_url, "consumer-0", settings.block).unwrap();
    let entries = streams
        .read_new(500, Some(Duration::from_millis(100)))
        .await
        .unwrap();
    assert_eq!(entries.len(), 20);
    let routed = route(entries, &VoteOptions::default());
    let store = Store::new(settings.postgres.clone(), VoteOptions::default());
    store.migrate().await.unwrap();
    assert_eq!(store.commit(&routed.votes).await.unwrap().counted, 20);
    drop(streams);
    assert_eq!(pending_of(&mut redis, "consumer-0").await, 20);

    // Its second life, same name: re-reads its pending entries from 0, counts nothing twice, acks.
    let consumer = Running::start(settings).await;
    wait_all_acked(&redis).await;
    let db = servers.db().await;
    assert_eq!(totals(&db).await, (20, 20));
    assert_eq!(counts(&db).await["cats"], 5);
    assert_eq!(consumer.metrics.processed.get(), 0);
    assert_eq!(consumer.metrics.duplicates_skipped.get(), 20);
    assert_eq!(pending_of(&mut redis, "consumer-0").await, 0);
    consumer.stop().await;
}

#[tokio::test]
async fn entries_left_pending_by_a_dead_consumer_are_claimed() {
    let servers = Servers::start().await;
    let mut redis = servers.redis().await;
    create_group(&mut redis).await;
    for _ in 0..30 {
        xadd(&mut redis, &vote("cats")).await;
    }
    // A consumer that read and vanished without committing or acknowledging.
    let settings = servers.settings("survivor");
    let mut dead = StreamClient::new(&settings.redis_url, "gone-0", settings.block).unwrap();
    assert_eq!(
        dead.read_new(500, Some(Duration::from_millis(100)))
            .await
            .unwrap()
            .len(),
        30
    );
    drop(dead);
    // One more entry that only the survivor reads itself.
    xadd(&mut redis, &vote("dogs")).await;

    let consumer = Running::start(vote_consumer::Settings {
        claim_min_idle: Duration::from_millis(200),
        claim_interval: Duration::from_millis(100),
        ..settings
    })
    .await;
    let db = servers.db().await;
    wait_total(&db, 31).await;
    wait_all_acked(&redis).await;
    assert_eq!(pending_of(&mut redis, "gone-0").await, 0);
    assert_eq!(consumer.metrics.claimed.get(), 30);
    assert_eq!(counts(&db).await["cats"], 30);
    consumer.stop().await;
}

#[tokio::test]
async fn malformed_entries_are_dead_lettered_and_the_votes_around_them_counted() {
    let servers = Servers::start().await;
    let mut redis = servers.redis().await;
    let id = Uuid::new_v4().to_string();
    let now = "1732590000000".to_owned();
    let good_1 = xadd(&mut redis, &vote("dogs")).await;
    let renamed = xadd_fields(
        &mut redis,
        &[
            ("vote", "dogs".into()),
            (field::TIMESTAMP, now.clone()),
            (field::REQUEST_ID, id.clone()),
        ],
    )
    .await;
    let unknown = xadd_fields(
        &mut redis,
        &[
            (field::OPTION, "birds".into()),
            (field::TIMESTAMP, now.clone()),
            (field::REQUEST_ID, id.clone()),
        ],
    )
    .await;
    let good_2 = xadd(&mut redis, &vote("cats")).await;
    let bad_time = xadd_fields(
        &mut redis,
        &[
            (field::OPTION, "dogs".into()),
            (field::TIMESTAMP, "yesterday".into()),
            (field::REQUEST_ID, id.clone()),
        ],
    )
    .await;
    let bad_id = xadd_fields(
        &mut redis,
        &[
            (field::OPTION, "dogs".into()),
            (field::TIMESTAMP, now.clone()),
            (field::REQUEST_ID, "42".into()),
        ],
    )
    .await;
    let good_3 = xadd(&mut redis, &vote("dogs")).await;

    let consumer = Running::start(servers.settings("c1")).await;
    let db = servers.db().await;
    wait_all_acked(&redis).await;
    wait_total(&db, 3).await;
    let _ = (good_1, good_2, good_3);

    let dead: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(DEAD_LETTER_STREAM)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let letters: Vec<(String, String, serde_json::Value)> = dead
        .ids
        .iter()
        .map(|e| {
            let payload: String = e.get(dead_field::PAYLOAD).unwrap();
            (
                e.get(dead_field::SOURCE_ID).unwrap(),
                e.get(dead_field::REASON).unwrap(),
                serde_json::from_str(&payload).unwrap(),
            )
        })
        .collect();
    let summary: Vec<(&str, &str)> = letters
        .iter()
        .map(|(s, r, _)| (s.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (renamed.as_str(), "missing field `option`"),
            (unknown.as_str(), "option \"birds\" is not configured"),
            (
                bad_time.as_str(),
                "field `timestamp` is not milliseconds since the epoch: \"yesterday\""
            ),
            (bad_id.as_str(), "field `request_id` is not a UUID: \"42\""),
        ]
    );
    assert_eq!(
        letters[0].2["vote"], "dogs",
        "the payload keeps the original fields"
    );
    assert_eq!(consumer.metrics.dead_lettered.get(), 4);
    assert_eq!(consumer.metrics.acknowledged.get(), 7);
    consumer.stop().await;
}

#[tokio::test]
async fn postgres_stopped_and_restarted_mid_stream_loses_and_doubles_nothing() {
    let mut servers = Servers::start().await;
    // Small batches: the backlog is read ahead while a batch commits, outage or not.
    let consumer = Running::start(vote_consumer::Settings {
        batch_size: 10,
        ..servers.settings("c1")
    })
    .await;
    let mut redis = servers.redis().await;
    for _ in 0..100 {
        xadd(&mut redis, &vote("dogs")).await;
    }
    {
        let db = servers.db().await;
        wait_total(&db, 100).await;
    }
    wait_all_acked(&redis).await;

    servers.pg.stop().await;
    for _ in 0..150 {
        xadd(&mut redis, &vote("cats")).await;
    }
    // The consumer reads a batch, cannot commit it, and must not acknowledge any of it.
    eventually("a batch read while PostgreSQL is down", || {
        let mut redis = redis.clone();
        async move { (group_state(&mut redis).await.0 > 0).then_some(()) }
    })
    .await;
    let http = reqwest::Client::new();
    eventually("/ready naming postgres", || async {
        let r = http.get(consumer.url("/ready")).send().await.ok()?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.ok()?;
        (status == 503 && body["checks"]["postgres"] != "ok" && body["checks"]["redis"] == "ok")
            .then_some(())
    })
    .await;
    let (pending, lag) = group_state(&mut redis).await;
    assert_eq!(
        pending + lag,
        150,
        "nothing acknowledged while PostgreSQL is down"
    );
    assert!(
        consumer
            .metrics
            .encode()
            .contains("vote_consumer_dependency_up{dependency=\"postgres\"} 0")
    );

    servers.pg.start_again().await;
    let db = servers.db().await;
    wait_total(&db, 250).await;
    wait_all_acked(&redis).await;
    let counts = counts(&db).await;
    assert_eq!((counts["dogs"], counts["cats"]), (100, 150));
    consumer.stop().await;
}

async fn redis_restart_resumes(persistent: bool) {
    let config = vote_testkit::RedisConfig {
        appendonly: persistent,
        appendfsync: Some("always".into()),
    };
    let mut servers = Servers::start_with(vote_testkit::Redis::start_with(config)).await;
    let consumer = Running::start(vote_consumer::Settings {
        batch_size: 3,
        ..servers.settings("c1")
    })
    .await;
    let db = servers.db().await;
    {
        let mut redis = servers.redis().await;
        for _ in 0..10 {
            xadd(&mut redis, &vote("dogs")).await;
        }
        wait_total(&db, 10).await;
        wait_all_acked(&redis).await;
    }

    servers.redis.stop().await;
    let http = reqwest::Client::new();
    eventually("/ready naming redis", || async {
        let r = http.get(consumer.url("/ready")).send().await.ok()?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.ok()?;
        (status == 503 && body["checks"]["redis"] != "ok" && body["checks"]["postgres"] == "ok")
            .then_some(())
    })
    .await;
    eventually("the consumer noticed", || async {
        consumer
            .metrics
            .encode()
            .contains("vote_consumer_dependency_up{dependency=\"redis\"} 0")
            .then_some(())
    })
    .await;
    servers.redis.start_again().await;

    // Without persistence the stream and group are gone: the consumer must create them again.
    let mut redis = servers.redis().await;
    for _ in 0..10 {
        xadd(&mut redis, &vote("cats")).await;
    }
    wait_total(&db, 20).await;
    wait_all_acked(&redis).await;
    assert_eq!(counts(&db).await["cats"], 10);
    consumer.stop().await;
}

#[tokio::test]
async fn redis_stopped_and_restarted_with_its_data_resumes() {
    redis_restart_resumes(true).await;
}

#[tokio::test]
async fn redis_restarted_empty_gets_its_group_back_and_resumes() {
    redis_restart_resumes(false).await;
}

/// XRANGE ids of the stream.
async fn stream_ids(redis: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query_async(redis)
        .await
        .unwrap();
    reply.ids.into_iter().map(|e| e.id).collect()
}

async fn read_as(
    redis: &mut redis::aio::MultiplexedConnection,
    group: &str,
    consumer: &str,
    count: usize,
) -> Vec<String> {
    let reply: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query_async(redis)
        .await
        .unwrap();
    vote_consumer::entries::parse_read_reply(reply)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

async fn ack_as(redis: &mut redis::aio::MultiplexedConnection, group: &str, ids: &[String]) {
    let _: u64 = redis::cmd("XACK")
        .arg(STREAM)
        .arg(group)
        .arg(ids)
        .query_async(redis)
        .await
        .unwrap();
}

#[tokio::test]
async fn trimming_removes_only_what_every_group_acknowledged() {
    let servers = Servers::start().await;
    let mut redis = servers.redis().await;
    create_group(&mut redis).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg("audit")
        .arg("0")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(xadd(&mut redis, &vote("dogs")).await);
    }

    // Nothing delivered anywhere: nothing goes.
    assert_eq!(trim(&mut redis).await.unwrap().removed, 0);

    // vote-consumers: 0..6 delivered, 0..3 acknowledged (3..6 pending).
    let read = read_as(&mut redis, GROUP, "x", 6).await;
    ack_as(&mut redis, GROUP, &read[..3]).await;
    // audit: 0..8 delivered, all acknowledged.
    let read = read_as(&mut redis, "audit", "y", 8).await;
    ack_as(&mut redis, "audit", &read).await;
    let trimmed = trim(&mut redis).await.unwrap();
    assert_eq!(trimmed.removed, 3);
    assert_eq!(trimmed.min_id.unwrap(), ids[3].parse::<StreamId>().unwrap());
    assert_eq!(stream_ids(&mut redis).await, ids[3..]);

    // vote-consumers acknowledges its pending ones: audit's undelivered 8.. bounds the trim now.
    ack_as(&mut redis, GROUP, &ids[3..6]).await;
    assert_eq!(trim(&mut redis).await.unwrap().removed, 3);
    assert_eq!(stream_ids(&mut redis).await, ids[6..]);

    // The running consumer reads and acknowledges the rest and trims by itself, down to audit's need.
    let consumer = Running::start(vote_consumer::Settings {
        trim_interval: Duration::from_millis(50),
        ..servers.settings("c1")
    })
    .await;
    wait_all_acked(&redis).await;
    eventually("trimmed to audit's bound", || {
        let mut redis = redis.clone();
        let expected = ids[8..].to_vec();
        async move { (stream_ids(&mut redis).await == expected).then_some(()) }
    })
    .await;
    let read = read_as(&mut redis, "audit", "y", 10).await;
    assert_eq!(read, ids[8..]);
    ack_as(&mut redis, "audit", &read).await;
    eventually("trimmed empty", || {
        let mut redis = redis.clone();
        async move { stream_ids(&mut redis).await.is_empty().then_some(()) }
    })
    .await;
    assert!(consumer.metrics.trimmed.get() >= 2);
    consumer.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_the_batch_in_hand() {
    let servers = Servers::start().await;
    let mut consumer = Running::start(servers.settings("c1")).await;
    let db = servers.db().await;
    eventually("options seeded", || async {
        db.query_opt("SELECT 1 FROM vote_counts WHERE option = 'dogs'", &[])
            .await
            .ok()
            .flatten()
    })
    .await;
    // Hold the row the batch must update, so the batch is in hand when the stop is requested.
    let mut blocker = servers.db().await;
    let lock = blocker.transaction().await.unwrap();
    lock.execute(
        "SELECT 1 FROM vote_counts WHERE option = 'dogs' FOR UPDATE",
        &[],
    )
    .await
    .unwrap();
    let mut redis = servers.redis().await;
    let votes: Vec<_> = (0..25).map(|_| vote("dogs")).collect();
    xadd_atomically(&mut redis, &votes).await;
    eventually("the batch read", || {
        let mut redis = redis.clone();
        async move { (group_state(&mut redis).await == (25, 0)).then_some(()) }
    })
    .await;
    consumer.request_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !consumer.handle.is_finished(),
        "stopping waits for the batch in hand"
    );

    lock.rollback().await.unwrap();
    tokio::time::timeout(DEADLINE, &mut consumer.handle)
        .await
        .expect("stops once the batch is done")
        .unwrap()
        .unwrap();
    assert_eq!(
        group_state(&mut redis).await,
        (0, 0),
        "the batch was acknowledged"
    );
    assert_eq!(totals(&db).await, (25, 25));
}

#[tokio::test]
async fn shutdown_interrupts_a_blocking_read_without_losing_what_it_delivered() {
    let servers = Servers::start().await;
    let consumer = Running::start(vote_consumer::Settings {
        block: Duration::from_secs(120),
        ..servers.settings("c1")
    })
    .await;
    let mut redis = servers.redis().await;
    xadd(&mut redis, &vote("cats")).await;
    let db = servers.db().await;
    wait_total(&db, 1).await;
    // Now idle in a 120 s BLOCK; a stop must not wait for it.
    let started = std::time::Instant::now();
    consumer.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(group_state(&mut redis).await, (0, 0));
}

#[tokio::test]
async fn http_endpoints_report_readiness_and_the_stream() {
    let servers = Servers::start().await;
    let mut redis = servers.redis().await;
    create_group(&mut redis).await;
    for _ in 0..8 {
        xadd(&mut redis, &vote("dogs")).await;
    }
    // Another member of the group holds 5 entries (not idle long enough to be claimed).
    let mut other =
        StreamClient::new(&servers.redis.url(), "other", Duration::from_millis(100)).unwrap();
    assert_eq!(
        other
            .read_new(5, Some(Duration::from_millis(100)))
            .await
            .unwrap()
            .len(),
        5
    );
    let stats = vote_consumer::streams::group_stats(&mut redis)
        .await
        .unwrap();
    assert_eq!((stats.pending, stats.lag, stats.stream_length), (5, 3, 8));

    let consumer = Running::start(servers.settings("c1")).await;
    let db = servers.db().await;
    wait_total(&db, 3).await;
    let http = reqwest::Client::new();
    let ready = http.get(consumer.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}})
    );

    let text = http
        .get(consumer.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text, "vote_consumer_lag"), Some(0.0), "{text}");
    assert_eq!(metric(&text, "vote_consumer_pending"), Some(5.0));
    assert_eq!(metric(&text, "vote_consumer_processed_total"), Some(3.0));
    assert_eq!(
        metric(&text, "vote_consumer_dead_lettered_total"),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "vote_consumer_duplicates_skipped_total"),
        Some(0.0)
    );
    assert!(metric(&text, "vote_consumer_batch_duration_seconds_count").unwrap() >= 1.0);
    let health = http.get(consumer.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    consumer.stop().await;
}
