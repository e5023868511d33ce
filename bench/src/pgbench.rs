//! The raw limit of the consumer's drain: PostgreSQL running the consumer's own batch statement
//! under `pgbench`, one connection (the consumer commits one batch at a time), fresh request ids each
//! transaction. Votes per second = pgbench's transactions per second × the batch size.
//!
//! The statement is read from the consumer's source at compile time (`COUNT_BATCH` in
//! services/consumer/src/store.rs), so the benchmark cannot drift from what the consumer runs; only
//! its four array parameters are replaced by arrays generated on the server.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::process::Command;
use vote_contract::db::NOTIFY_CHANNEL;

const STORE_RS: &str = include_str!("../../services/consumer/src/store.rs");

/// The consumer's batch statement, verbatim.
pub fn count_batch_sql() -> anyhow::Result<&'static str> {
    let start_marker = "const COUNT_BATCH: &str = \"\\\n";
    let start = STORE_RS
        .find(start_marker)
        .context("COUNT_BATCH is no longer in services/consumer/src/store.rs")?
        + start_marker.len();
    let len = STORE_RS[start..]
        .find("\";")
        .context("COUNT_BATCH has no end")?;
    Ok(&STORE_RS[start..start + len])
}

/// A pgbench script of one consumer batch of `batch` votes: the statement, the `NOTIFY`, in one
/// transaction.
pub fn script(batch: u32) -> anyhow::Result<String> {
    let sql = count_batch_sql()?;
    let series = format!("generate_series(1, {batch}) AS g");
    let replaced = sql
        .replace(
            "$1",
            &format!("(SELECT array_agg(gen_random_uuid()) FROM {series})"),
        )
        .replace(
            "$2",
            &format!(
                "(SELECT array_agg(CASE WHEN g % 2 = 0 THEN 'cats' ELSE 'dogs' END) FROM {series})"
            ),
        )
        .replace(
            "$3",
            &format!("(SELECT array_agg('0-' || g) FROM {series})"),
        )
        .replace(
            "$4",
            &format!(
                "(SELECT array_agg((extract(epoch FROM now()) * 1000)::bigint) FROM {series})"
            ),
        );
    if replaced.contains('$') {
        bail!("the batch statement has parameters beyond $1..$4: {sql}");
    }
    Ok(format!(
        "BEGIN;\n{replaced};\nSELECT pg_notify('{NOTIFY_CHANNEL}', '{batch}');\nCOMMIT;\n"
    ))
}

/// Transactions per second of `script` on database `db` at 127.0.0.1:`port` for `seconds`.
pub async fn run(
    bin_dir: &Path,
    port: u16,
    db: &str,
    script: &str,
    seconds: u32,
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("batch.sql");
    std::fs::write(&file, script)?;
    let out = Command::new(bin_dir.join("pgbench"))
        .args(["-n", "-c", "1", "-j", "1", "-M", "prepared"])
        .args(["-T", &seconds.to_string()])
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .arg("-f")
        .arg(&file)
        .arg(db)
        .stdin(Stdio::null())
        .output()
        .await
        .context("failed to start pgbench (apt-get install postgresql)")?;
    if !out.status.success() {
        bail!(
            "pgbench exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_tps(&String::from_utf8_lossy(&out.stdout))
}

/// Reads `tps = N (without initial connection time)` from pgbench's report.
pub fn parse_tps(text: &str) -> anyhow::Result<f64> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("tps = "))
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no tps in pgbench's output:\n{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_statement_is_found_and_filled() {
        let sql = count_batch_sql().unwrap();
        assert!(sql.starts_with("WITH inserted AS ("), "{sql}");
        assert!(sql.contains("ON CONFLICT (request_id) DO NOTHING"), "{sql}");
        let script = script(500).unwrap();
        assert!(!script.contains('$'));
        assert!(script.contains("generate_series(1, 500)"));
        assert!(script.starts_with("BEGIN;\nWITH inserted AS ("));
        assert!(script.ends_with("COMMIT;\n"));
    }

    #[test]
    fn reads_pgbench_tps() {
        let text = "latency average = 5.1 ms\ninitial connection time = 3.2 ms\ntps = 195.3 (without initial connection time)\n";
        assert_eq!(parse_tps(text).unwrap(), 195.3);
        assert!(parse_tps("nothing").is_err());
    }
}
