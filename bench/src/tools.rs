//! The raw tools a benchmark runs (`redis-benchmark`, `wrk`) and the parsing of what they print.

use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::process::Command;
use vote_contract::VoteEntry;

/// Throughput and latency as a load tool reported them.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub rate: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `redis-benchmark` running XADD of `entry`'s fields at `concurrency` against 127.0.0.1:`port`, to a
/// key of its own so the stream under test is untouched.
pub async fn redis_benchmark_xadd(
    port: u16,
    concurrency: u32,
    requests: u32,
    entry: &VoteEntry,
) -> anyhow::Result<Load> {
    let mut command = Command::new("redis-benchmark");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    command.args([
        "-c",
        &concurrency.to_string(),
        "-n",
        &requests.to_string(),
        "--csv",
    ]);
    command.args(["XADD", "bench:raw", "*"]);
    for (field, value) in entry.encode() {
        command.args([field, value.as_str()]);
    }
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("failed to start redis-benchmark (apt-get install redis-tools)")?;
    if !out.status.success() {
        bail!("redis-benchmark exited with {}", out.status);
    }
    parse_redis_benchmark_csv(&String::from_utf8_lossy(&out.stdout), requests)
}

/// Parses `redis-benchmark --csv` (7.x): a header line, then one quoted line per test.
pub fn parse_redis_benchmark_csv(text: &str, requests: u32) -> anyhow::Result<Load> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv(lines.next().context("redis-benchmark printed nothing")?);
    let row = split_csv(
        lines
            .next()
            .context("redis-benchmark printed no result row")?,
    );
    let column = |name: &str| -> anyhow::Result<f64> {
        let i = header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no {name} column in {header:?}"))?;
        row.get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no number in column {name}: {row:?}"))
    };
    Ok(Load {
        rate: column("rps")?,
        requests: u64::from(requests),
        errors: 0,
        p50_ms: column("p50_latency_ms")?,
        p99_ms: column("p99_latency_ms")?,
    })
}

fn split_csv(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('"')
        .split("\",\"")
        .map(str::to_owned)
        .collect()
}

/// `wrk` posting `{"option":"dogs"}` to `base`/api/vote with `connections` connections for `seconds`.
pub async fn wrk_post_vote(base: &str, connections: u32, seconds: u32) -> anyhow::Result<Load> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("vote.lua");
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\n\
         wrk.body = '{\"option\":\"dogs\"}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )?;
    let out = Command::new("wrk")
        .args([
            "-t",
            "2",
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
        ])
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(format!("{base}/api/vote"))
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("failed to start wrk (apt-get install wrk)")?;
    if !out.status.success() {
        bail!("wrk exited with {}", out.status);
    }
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(text: &str) -> anyhow::Result<Load> {
    let mut load = Load {
        rate: f64::NAN,
        requests: 0,
        errors: 0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
    };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rate] => load.rate = rate.parse()?,
            ["50%", value] => load.p50_ms = duration_ms(value)?,
            ["99%", value] => load.p99_ms = duration_ms(value)?,
            [n, "requests", "in", ..] => load.requests = n.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => load.errors += n.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                for n in rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                {
                    load.errors += n;
                }
            }
            _ => {}
        }
    }
    if load.rate.is_nan() || load.p50_ms.is_nan() || load.requests == 0 {
        bail!("could not read wrk's output:\n{text}");
    }
    Ok(load)
}

fn duration_ms(value: &str) -> anyhow::Result<f64> {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {value:?}"))?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse()?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        other => bail!("unknown unit {other:?} in {value:?}"),
    })
}

/// The status of a GET, or None when nothing answered.
pub async fn http_status(url: &str) -> Option<u16> {
    reqwest::get(url).await.ok().map(|r| r.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_benchmark_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                    \"XADD bench:raw * option dogs\",\"91743.12\",\"0.551\",\"0.144\",\"0.527\",\"0.807\",\"1.103\",\"3.415\"\n";
        let load = parse_redis_benchmark_csv(text, 1000).unwrap();
        assert_eq!(
            (load.rate, load.p50_ms, load.p99_ms),
            (91743.12, 0.527, 1.103)
        );
    }

    #[test]
    fn reads_wrk_latency_output() {
        let text = "Running 10s test @ http://127.0.0.1:1/api/vote
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.02ms  40.00ms   90.00%
  Latency Distribution
     50%  812.00us
     75%    3.20ms
     90%    4.00ms
     99%    1.20s
  123456 requests in 10.00s, 30.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  12345.67
Transfer/sec:      3.00MB
";
        let load = parse_wrk(text).unwrap();
        assert_eq!(load.requests, 123_456);
        assert_eq!(load.errors, 8);
        assert_eq!(
            (load.p50_ms, load.p99_ms, load.rate),
            (0.812, 1200.0, 12345.67)
        );
        assert!(parse_wrk("garbage").is_err());
    }
}
