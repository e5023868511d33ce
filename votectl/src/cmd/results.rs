//! `votectl results`: the current counts as a table with percentages and bars; `--watch` follows the
//! API's Server-Sent Events and redraws on every change; `-o json|yaml` for scripts.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use comfy_table::{Cell, CellAlignment};
use futures::StreamExt;
use vote_contract::http::{RESULTS_EVENT, ResultsResponse, path};

use crate::api::{self, Api};
use crate::local::StateDir;
use crate::output::{self, Format};
use crate::{Ctx, exit, sse};

/// Width of a full bar, in characters.
const BAR_WIDTH: usize = 30;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep following the results live (Server-Sent Events) and redraw on every change.
    #[arg(short, long)]
    pub watch: bool,
    /// Output format (with --watch: one document per change).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The API [default: the local runtime's, else http://127.0.0.1:8000].
    #[arg(long, env = "VOTECTL_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(&ctx.global.state_dir)?;
    let (base, _) = api::resolve_base(args.api_url.as_deref(), &state)?;
    let api = Api::new(base, 1)?;
    if args.watch {
        return watch(&api, args.output).await;
    }
    let results = api.results().await?;
    match args.output {
        Format::Table => print!("{}", render(&results)),
        format => print!("{}", output::document(&results, format)?),
    }
    Ok(exit::OK)
}

/// A bar of `percentage`% of [`BAR_WIDTH`], in eighths of a character.
pub fn bar(percentage: f64) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let clamped = percentage.clamp(0.0, 100.0);
    // At most BAR_WIDTH * 8 = 240: no truncation worth worrying about.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let eighths = (clamped / 100.0 * (BAR_WIDTH * 8) as f64).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        bar.push(EIGHTHS[eighths % 8]);
    }
    bar
}

/// The table for people, with a total line.
pub fn render(results: &ResultsResponse) -> String {
    let mut table = output::table(["Option", "Votes", "Share", ""]);
    for r in &results.results {
        table.add_row([
            Cell::new(&r.option),
            Cell::new(r.count).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.1}%", r.percentage)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:width$}", bar(r.percentage), width = BAR_WIDTH)),
        ]);
    }
    let last = results.last_updated.as_deref().map_or_else(
        || "no votes yet".to_owned(),
        |t| format!("last vote counted {t}"),
    );
    let noun = if results.total_votes == 1 {
        "vote"
    } else {
        "votes"
    };
    format!("{table}\nTotal: {} {noun} ({last})\n", results.total_votes)
}

/// Follows the results stream until Ctrl-C, reconnecting when it drops.
async fn watch(api: &Api, format: Format) -> anyhow::Result<ExitCode> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut connected_once = false;
    let mut delay = Duration::from_millis(500);
    loop {
        let outcome = tokio::select! {
            _ = &mut ctrl_c => return Ok(exit::OK),
            outcome = follow(api, format, &mut connected_once) => outcome,
        };
        match outcome {
            // Never reached the API: that is an answer, not something to wait out.
            Err(err) if !connected_once => return Err(err),
            Err(err) => eprintln!("results stream lost ({err:#}); reconnecting…"),
            Ok(()) => eprintln!("results stream ended; reconnecting…"),
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(exit::OK),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// One connection to the stream: draws each `results` event until the stream ends.
async fn follow(api: &Api, format: Format, connected_once: &mut bool) -> anyhow::Result<()> {
    let url = api.url(path::RESULTS_STREAM);
    let response = api
        .http()
        .get(&url)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| api.unreachable(&e))?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url} answered {}",
        response.status()
    );
    *connected_once = true;
    let mut parser = sse::Parser::default();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("{}", api::root_cause(&e)))?;
        for event in parser.feed(&chunk) {
            if event.event != RESULTS_EVENT {
                continue;
            }
            let results: ResultsResponse = serde_json::from_str(&event.data)
                .with_context(|| format!("failed to parse a `{RESULTS_EVENT}` event from {url}"))?;
            draw(&results, format, api.base())?;
        }
    }
    Ok(())
}

fn draw(results: &ResultsResponse, format: Format, base: &str) -> anyhow::Result<()> {
    match format {
        Format::Table if std::io::stdout().is_terminal() => {
            // Clear the screen and draw from the top, like `watch`.
            println!(
                "\x1b[2J\x1b[H{}Watching {base} live; Ctrl-C stops.",
                render(results)
            );
        }
        Format::Table => println!("{}", render(results)),
        Format::Json => println!("{}", serde_json::to_string(results)?),
        Format::Yaml => print!("---\n{}", output::document(results, Format::Yaml)?),
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_with_the_share() {
        assert_eq!(bar(0.0), "");
        assert_eq!(bar(100.0).chars().count(), BAR_WIDTH);
        assert_eq!(bar(50.0), "█".repeat(15));
        assert_eq!(bar(1.0), "▎");
        assert_eq!(bar(250.0).chars().count(), BAR_WIDTH);
    }

    #[test]
    fn the_table_lists_every_option_and_the_total() {
        let options = "cats,dogs".parse().unwrap();
        let results = ResultsResponse::from_counts(
            &options,
            |o| if o == "dogs" { 3 } else { 1 },
            Some("2026-01-01T00:00:00.000Z".into()),
        );
        let text = render(&results);
        assert!(text.contains("cats"), "{text}");
        assert!(text.contains("75.0%"), "{text}");
        assert!(
            text.contains("Total: 4 votes (last vote counted 2026-01-01T00:00:00.000Z)"),
            "{text}"
        );
    }
}
