//! `votectl status`: each component of the local runtime with its PID, URL and readiness, plus the
//! consumer's lag and pending entries from its metrics.
//!
//! Exit code: 0 when every component is ready, 1 when any is not (including when nothing runs at all:
//! what was checked is not up), 2 when the state cannot be read.

use std::process::ExitCode;

use serde::Serialize;
use vote_contract::http::path;

use crate::local::health;
use crate::local::{Component, Mode, Runtime, StateDir};
use crate::output::{self, Format};
use crate::{Ctx, exit};

/// Metric names the consumer exposes (Prometheus text, `vote_consumer_` prefix).
pub mod metric {
    /// Gauge: entries of the stream not yet delivered to the consumer group.
    pub const LAG: &str = "vote_consumer_lag";
    /// Gauge: entries delivered to the group and not yet acknowledged.
    pub const PENDING: &str = "vote_consumer_pending";
    /// Counter: votes counted.
    pub const PROCESSED: &str = "vote_consumer_processed_total";
    /// Counter: malformed entries moved to the dead-letter stream.
    pub const DEAD_LETTERED: &str = "vote_consumer_dead_lettered_total";
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// `-o json`: `{"components":[{"name","pid","url","ready",…}…]}` plus where and how it runs.
#[derive(Debug, Serialize)]
pub struct Status {
    pub components: Vec<ComponentStatus>,
    pub state_dir: String,
    /// `foreground`, `detached`, or null when nothing runs.
    pub mode: Option<Mode>,
    pub started_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ComponentStatus {
    pub name: Component,
    /// Null when the component is not running.
    pub pid: Option<u32>,
    pub url: Option<String>,
    pub ready: bool,
    pub running: bool,
    pub port: Option<u16>,
    pub restarts: u32,
    pub uptime_seconds: Option<u64>,
    /// Why it is not ready, when it is not.
    pub detail: Option<String>,
    /// Consumer only: entries not yet delivered to the consumer group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// Consumer only: entries delivered but not yet acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    /// Consumer only: votes counted since it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processed: Option<u64>,
    /// Consumer only: malformed entries dead-lettered since it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered: Option<u64>,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(&ctx.global.state_dir)?;
    let runtime = Runtime::load(&state)?;
    let status = collect(&state, runtime.as_ref()).await;
    let all_ready = status.components.iter().all(|c| c.ready);
    match args.output {
        Format::Table => {
            if runtime.is_none() {
                eprintln!(
                    "The local runtime is not running (no runtime.json in {}); `votectl up --local` \
                     starts it.",
                    state.root().display()
                );
            }
            print!("{}", render(&status));
        }
        format => print!("{}", output::document(&status, format)?),
    }
    Ok(if all_ready { exit::OK } else { exit::FAILED })
}

/// Probes every component (concurrently) and reads the consumer's metrics.
pub async fn collect(state: &StateDir, runtime: Option<&Runtime>) -> Status {
    let http = reqwest::Client::new();
    let now = crate::local::runtime::now_unix();
    let probes = Component::DISPLAY_ORDER.map(|component| {
        let http = http.clone();
        let record = runtime.and_then(|r| r.component(component)).cloned();
        async move {
            let Some(record) = record else {
                return ComponentStatus::absent(component, "not started");
            };
            let running = record.is_alive();
            let mut status = ComponentStatus {
                name: component,
                pid: running.then_some(record.process.pid),
                url: Some(record.url.clone()),
                ready: false,
                running,
                port: Some(record.port),
                restarts: record.restarts,
                uptime_seconds: running.then(|| now.saturating_sub(record.started_unix)),
                detail: None,
                lag: None,
                pending: None,
                processed: None,
                dead_lettered: None,
            };
            if !running {
                status.detail = Some(format!(
                    "not running (was pid {}; see {})",
                    record.process.pid,
                    record.log.display()
                ));
                return status;
            }
            match health::probe(component, record.port, &http).await {
                Ok(()) => status.ready = true,
                Err(why) => status.detail = Some(why),
            }
            if component == Component::Consumer
                && let Some(text) = fetch_metrics(&http, &record.url).await
            {
                status.lag = metric_value(&text, metric::LAG);
                status.pending = metric_value(&text, metric::PENDING);
                status.processed = metric_value(&text, metric::PROCESSED);
                status.dead_lettered = metric_value(&text, metric::DEAD_LETTERED);
            }
            status
        }
    });
    let components = futures::future::join_all(probes).await;
    Status {
        components,
        state_dir: state.root().display().to_string(),
        mode: runtime.map(|r| r.mode),
        started_at: runtime.map(|r| r.started_at.clone()),
    }
}

impl ComponentStatus {
    fn absent(name: Component, why: &str) -> Self {
        Self {
            name,
            pid: None,
            url: None,
            ready: false,
            running: false,
            port: None,
            restarts: 0,
            uptime_seconds: None,
            detail: Some(why.to_owned()),
            lag: None,
            pending: None,
            processed: None,
            dead_lettered: None,
        }
    }
}

async fn fetch_metrics(http: &reqwest::Client, base: &str) -> Option<String> {
    let response = http
        .get(format!("{base}{}", path::METRICS))
        .timeout(health::PROBE_TIMEOUT)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

/// The value of an unlabelled sample `name` (or the sum over its labelled samples) in Prometheus
/// text; `None` when absent.
pub fn metric_value(text: &str, name: &str) -> Option<u64> {
    let mut total: Option<f64> = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // The name must end here: `…_lag 3` or `…_lag{…} 3`, not `…_lag_seconds 3`.
        let value = if let Some(labelled) = rest.strip_prefix('{') {
            labelled.split_once('}').map(|(_, v)| v)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None
        };
        if let Some(v) = value.and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()) {
            *total.get_or_insert(0.0) += v;
        }
    }
    // Counts are integral; a fraction here would be a bug upstream, and truncating it is harmless.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    total.map(|t| t.max(0.0) as u64)
}

fn format_uptime(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The table for people.
pub fn render(status: &Status) -> String {
    let mut table = output::table([
        "Component",
        "Ready",
        "PID",
        "URL",
        "Uptime",
        "Restarts",
        "Details",
    ]);
    for c in &status.components {
        let mut details = Vec::new();
        if let Some(lag) = c.lag {
            details.push(format!("lag {lag}"));
        }
        if let Some(pending) = c.pending {
            details.push(format!("pending {pending}"));
        }
        if let Some(processed) = c.processed {
            details.push(format!("processed {processed}"));
        }
        if let Some(dead) = c.dead_lettered.filter(|d| *d > 0) {
            details.push(format!("dead-lettered {dead}"));
        }
        if let Some(detail) = &c.detail {
            details.push(detail.clone());
        }
        table.add_row([
            c.name.name().to_owned(),
            if c.ready { "yes" } else { "no" }.to_owned(),
            c.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            c.url.clone().unwrap_or_else(|| "-".to_owned()),
            c.uptime_seconds
                .map_or_else(|| "-".to_owned(), format_uptime),
            c.restarts.to_string(),
            details.join(", "),
        ]);
    }
    format!("{table}\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP vote_consumer_lag Entries of the votes stream not yet delivered to the consumer group.
# TYPE vote_consumer_lag gauge
vote_consumer_lag 12
vote_consumer_lag_seconds 99
vote_consumer_pending 3
vote_consumer_processed_total 20001
vote_consumer_dependency_up{dependency=\"redis\"} 1
vote_consumer_dependency_up{dependency=\"postgres\"} 1
# EOF
";

    #[test]
    fn metrics_are_read_by_exact_name() {
        assert_eq!(metric_value(METRICS, metric::LAG), Some(12));
        assert_eq!(metric_value(METRICS, metric::PENDING), Some(3));
        assert_eq!(metric_value(METRICS, metric::PROCESSED), Some(20_001));
        assert_eq!(
            metric_value(METRICS, "vote_consumer_dependency_up"),
            Some(2)
        );
        assert_eq!(metric_value(METRICS, metric::DEAD_LETTERED), None);
    }

    #[test]
    fn json_has_the_documented_shape_when_nothing_runs() {
        let status = Status {
            components: Component::DISPLAY_ORDER
                .map(|c| ComponentStatus::absent(c, "not started"))
                .into(),
            state_dir: "/x".into(),
            mode: None,
            started_at: None,
        };
        let json = serde_json::to_value(&status).unwrap();
        let names: Vec<&str> = json["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["frontend", "api", "consumer", "redis", "postgres"]);
        for c in json["components"].as_array().unwrap() {
            assert_eq!(c["pid"], serde_json::Value::Null);
            assert_eq!(c["ready"], false);
            assert!(c.get("url").is_some());
        }
        assert!(render(&status).contains("not started"));
    }
}
