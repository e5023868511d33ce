//! The harness itself: servers start, hold data, stop, restart on the same port and clean up.

use redis::AsyncCommands;
use vote_testkit::{Postgres, Redis, RedisConfig};

#[tokio::test]
async fn redis_starts_stops_and_restarts_with_aof() {
    let mut redis = Redis::start_with(RedisConfig {
        appendonly: true,
        appendfsync: Some("always".into()),
    })
    .await;
    let mut con = redis.connection().await;
    let _: () = con.set("k", "v").await.unwrap();
    let port = redis.port();
    redis.stop().await;
    assert!(
        redis::Client::open(redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .is_err(),
        "a stopped server must refuse connections"
    );
    redis.start_again().await;
    assert_eq!(redis.port(), port);
    let mut con = redis.connection().await;
    let v: String = con.get("k").await.unwrap();
    assert_eq!(v, "v");
}

#[tokio::test]
async fn two_redis_servers_are_independent() {
    let a = Redis::start().await;
    let b = Redis::start().await;
    assert_ne!(a.port(), b.port());
    let _: () = a.connection().await.set("only-a", 1).await.unwrap();
    let exists: bool = b.connection().await.exists("only-a").await.unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn postgres_gives_fresh_databases_and_survives_restart() {
    let mut pg = Postgres::start().await;
    let url = pg.create_database().await;
    let client = pg.connect(&url).await;
    client
        .batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
        .await
        .unwrap();
    let other = pg.create_database().await;
    assert_ne!(url, other);
    let fresh = pg.connect(&other).await;
    assert!(fresh.query("SELECT * FROM t", &[]).await.is_err());

    pg.stop().await;
    assert!(client.simple_query("SELECT 1").await.is_err());
    pg.start_again().await;
    let client = pg.connect(&url).await;
    let x: i32 = client
        .query_one("SELECT x FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(x, 7);
}

#[tokio::test]
async fn dropping_a_server_stops_its_process() {
    let pg = Postgres::start().await;
    let redis = Redis::start().await;
    let (pg_pid, redis_pid) = (pg.pid().unwrap(), redis.pid().unwrap());
    drop(pg);
    drop(redis);
    for pid in [pg_pid, redis_pid] {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived its handle"
        );
    }
}
