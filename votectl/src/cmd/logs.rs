//! `votectl logs [component] [-f]`: the local runtime's logs, one component or all of them.
//!
//! Logs are plain files under `<state-dir>/logs/` and outlive the processes (until `down --purge`), so
//! this works whether or not the runtime runs. With several components each line is prefixed with its
//! component's name; following picks up new lines as they are written and survives a log being
//! truncated.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::local::{Component, StateDir};
use crate::{Ctx, exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component whose log to show [default: all of them].
    #[arg(value_enum)]
    pub component: Option<Component>,
    /// Keep printing new lines as they are written (Ctrl-C stops).
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each log.
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,
}

struct Source {
    path: PathBuf,
    prefix: String,
    /// Where the next unread byte is.
    offset: u64,
    /// A line whose end has not been written yet.
    partial: Vec<u8>,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(&ctx.global.state_dir)?;
    let components: Vec<Component> = match args.component {
        Some(c) => vec![c],
        None => Component::START_ORDER.to_vec(),
    };
    let width = components.iter().map(|c| c.name().len()).max().unwrap_or(0);
    let mut sources: Vec<Source> = components
        .iter()
        .map(|&component| Source {
            path: state.log_file(component),
            prefix: if components.len() > 1 {
                format!("{:width$} | ", component.name())
            } else {
                String::new()
            },
            offset: 0,
            partial: Vec::new(),
        })
        .collect();
    if !sources.iter().any(|s| s.path.exists()) {
        let which = args
            .component
            .map_or_else(|| "no logs".to_owned(), |c| format!("no log for {c}"));
        anyhow::bail!(
            "{which} in {} (`votectl up --local` writes them there)",
            state.logs_dir().display()
        );
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for source in &mut sources {
        print_existing(source, args.tail, &mut out)?;
    }
    out.flush()?;
    drop(out);
    if !args.follow {
        return Ok(exit::OK);
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        {
            let mut out = stdout.lock();
            for source in &mut sources {
                print_new(source, &mut out)?;
            }
            out.flush()?;
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(exit::OK),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Prints what is in the log now (its last `tail` lines if given) and remembers where it ended.
fn print_existing(
    source: &mut Source,
    tail: Option<usize>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let Ok(mut file) = File::open(&source.path) else {
        return Ok(());
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = match tail {
        Some(n) => tail_offset(&mut file, len, n)
            .with_context(|| format!("failed to read {}", source.path.display()))?,
        None => 0,
    };
    source.offset = start;
    print_new(source, out)
}

/// Prints the complete lines written since the last call.
fn print_new(source: &mut Source, out: &mut impl Write) -> anyhow::Result<()> {
    let Ok(mut file) = File::open(&source.path) else {
        return Ok(());
    };
    let len = file.metadata().map_or(0, |m| m.len());
    if len < source.offset {
        // Truncated or replaced: start over.
        source.offset = 0;
        source.partial.clear();
    }
    file.seek(SeekFrom::Start(source.offset))
        .with_context(|| format!("failed to read {}", source.path.display()))?;
    let mut reader = BufReader::new(file.take(len - source.offset));
    loop {
        let mut line = Vec::new();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("failed to read {}", source.path.display()))?;
        if n == 0 {
            break;
        }
        source.offset += n as u64;
        if line.last() != Some(&b'\n') {
            source.partial.extend_from_slice(&line);
            break;
        }
        let mut whole = std::mem::take(&mut source.partial);
        whole.extend_from_slice(&line);
        out.write_all(source.prefix.as_bytes())?;
        out.write_all(&whole)?;
    }
    Ok(())
}

/// The offset at which the last `lines` lines of the file begin, reading backwards in blocks.
fn tail_offset(file: &mut File, len: u64, lines: usize) -> std::io::Result<u64> {
    if lines == 0 {
        return Ok(len);
    }
    const BLOCK: u64 = 64 * 1024;
    let mut end = len;
    let mut newlines = 0;
    // A final newline ends the last line rather than starting an empty one.
    let mut skip_last = true;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let mut buf = vec![0; usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        for (i, byte) in buf.iter().enumerate().rev() {
            if *byte != b'\n' {
                skip_last = false;
                continue;
            }
            if skip_last {
                skip_last = false;
                continue;
            }
            newlines += 1;
            if newlines == lines {
                return Ok(start + i as u64 + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn source(path: PathBuf, prefix: &str) -> Source {
        Source {
            path,
            prefix: prefix.to_owned(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    #[test]
    fn tail_finds_the_last_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.log");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let mut file = File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        let text =
            |offset: u64| std::fs::read_to_string(&path).unwrap()[offset as usize..].to_owned();
        assert_eq!(
            text(tail_offset(&mut file, len, 2).unwrap()),
            "two\nthree\n"
        );
        assert_eq!(
            text(tail_offset(&mut file, len, 9).unwrap()),
            "one\ntwo\nthree\n"
        );
        assert_eq!(text(tail_offset(&mut file, len, 0).unwrap()), "");
    }

    #[test]
    fn following_prints_whole_lines_once_and_survives_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.log");
        std::fs::write(&path, "first\nhal").unwrap();
        let mut s = source(path.clone(), "api | ");
        let mut out = Vec::new();
        print_new(&mut s, &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "api | first\n");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"f\nsecond\n")
            .unwrap();
        out.clear();
        print_new(&mut s, &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "api | half\napi | second\n");
        std::fs::write(&path, "again\n").unwrap();
        out.clear();
        print_new(&mut s, &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "api | again\n");
    }
}
