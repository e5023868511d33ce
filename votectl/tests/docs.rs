//! The documentation cannot rot: every command it shows is parsed by votectl's own command line, the
//! runnable ones are run, and the generated parts are compared with what they are generated from.
//!
//! Conventions in `docs/*.md`:
//! - Every ```` ```sh ```` block is preceded by a marker comment:
//!   - `<!-- docs-check -->`: the block is run with `bash -euo pipefail` and must exit 0. The blocks of
//!     one file run in order in one fresh environment: an empty state directory (`VOTECTL_STATE_DIR`),
//!     an empty working directory, and the `votectl` under test first on `PATH`. `votectl up` is given
//!     this workspace's service binaries and free ports (a wrapper adds `--bin-dir` and `--*-port`);
//!     nothing else is changed. Whatever the file started is stopped and purged afterwards.
//!   - `<!-- docs-check: skip REASON -->`: not run (it needs a cluster, say); REASON is required.
//! - Every `votectl …` command anywhere in the docs (in any code block, after a `$ ` prompt, or in
//!   inline code) must parse with votectl's command line as it is now: a renamed flag fails here.
//! - architecture.md's flow table and diagram, between `<!-- generated:… -->` markers, are rendered
//!   from `votectl_manifests::intended_flows`; `VOTECTL_BLESS_DOCS=1` rewrites them.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use support::{Local, both, code, one_stack_at_a_time, votectl_exe};
use votectl_manifests::{Component, Flow, Layers, Namespaces, Peer};

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// The Markdown files of docs/, sorted.
fn doc_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(docs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

/// How a block is to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    Run,
    Skip(String),
    None,
}

/// A fenced code block.
#[derive(Debug, Clone)]
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    marker: Marker,
    text: String,
}

impl Block {
    fn is_shell(&self) -> bool {
        matches!(self.lang.as_str(), "sh" | "bash" | "shell")
    }

    fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Parses a marker comment: `<!-- docs-check -->` or `<!-- docs-check: skip REASON -->`.
fn marker(line: &str) -> Option<Marker> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let rest = inner.strip_prefix("docs-check")?.trim();
    if rest.is_empty() {
        return Some(Marker::Run);
    }
    let reason = rest.strip_prefix(':')?.trim().strip_prefix("skip")?.trim();
    Some(Marker::Skip(reason.to_owned()))
}

/// The fenced blocks of a file and its inline code spans (outside blocks), with line numbers.
fn parse(file: &str, text: &str) -> (Vec<Block>, Vec<(usize, String)>) {
    let mut blocks = Vec::new();
    let mut inline = Vec::new();
    let mut open: Option<(String, Block)> = None;
    let mut last_marker: Option<(usize, Marker)> = None;
    let mut paragraph: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some((fence, mut block)) = open.take() {
            if trimmed.starts_with(&fence) && trimmed.trim() == fence {
                blocks.push(block);
            } else {
                block.text.push_str(line);
                block.text.push('\n');
                open = Some((fence, block));
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            spans_of(&mut paragraph, &mut inline);
            let fence: String = trimmed
                .chars()
                .take_while(|c| *c == '`' || *c == '~')
                .collect();
            let lang = trimmed[fence.len()..].trim().to_owned();
            // The marker must be the nearest non-blank line before the fence.
            let marker = match &last_marker {
                Some((at, m)) if *at + 1 == i => m.clone(),
                _ => Marker::None,
            };
            open = Some((
                fence,
                Block {
                    file: file.to_owned(),
                    line: i + 1,
                    lang,
                    marker,
                    text: String::new(),
                },
            ));
            continue;
        }
        if let Some(m) = marker(line) {
            last_marker = Some((i, m));
        } else if line.trim().is_empty()
            && let Some((at, _)) = &mut last_marker
            && *at + 1 == i
        {
            // A blank line between marker and fence is allowed.
            *at = i;
        }
        // Inline code may wrap: spans are looked for in whole paragraphs.
        if line.trim().is_empty() {
            spans_of(&mut paragraph, &mut inline);
        } else {
            if paragraph.is_none() {
                paragraph = Some((i + 1, String::new()));
            }
            if let Some((_, text)) = &mut paragraph {
                text.push_str(line.trim());
                text.push(' ');
            }
        }
    }
    spans_of(&mut paragraph, &mut inline);
    assert!(open.is_none(), "{file}: a code fence is never closed");
    (blocks, inline)
}

/// Moves the `votectl …` inline code spans of a finished paragraph (first line, text) to `inline`.
fn spans_of(paragraph: &mut Option<(usize, String)>, inline: &mut Vec<(usize, String)>) {
    let Some((line, text)) = paragraph.take() else {
        return;
    };
    let mut rest = text.as_str();
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        let span = after[..end].trim();
        // The bare program name is a name, not a command.
        if span.starts_with("votectl ") {
            inline.push((line, span.to_owned()));
        }
        rest = &after[end + 1..];
    }
}

/// Splits shell text into words, keeping the operators `|`, `||`, `&&`, `;`, `>`, `<`, `2>` … as
/// words of their own; understands quotes, backslashes, line continuations and comments. Enough for
/// the commands the docs show (no substitutions).
fn shell_words(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars().peekable();
    let flush = |word: &mut Option<String>, words: &mut Vec<String>| {
        if let Some(w) = word.take() {
            words.push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(next) => word.get_or_insert_with(String::new).push(next),
            },
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for next in chars.by_ref() {
                    if next == '\'' {
                        break;
                    }
                    w.push(next);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(next) = chars.next() {
                    match next {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                w.push(escaped);
                            }
                        }
                        other => w.push(other),
                    }
                }
            }
            '#' if word.is_none() => {
                for next in chars.by_ref() {
                    if next == '\n' {
                        break;
                    }
                }
                flush(&mut word, &mut words);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            '\n' => {
                flush(&mut word, &mut words);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            ' ' | '\t' => flush(&mut word, &mut words),
            '|' | '&' | ';' | '>' | '<' => {
                // `2>`: a file descriptor written right before `>` belongs to the redirection.
                let mut op = match word.take() {
                    Some(fd) if c == '>' && fd.chars().all(|d| d.is_ascii_digit()) => fd,
                    other => {
                        word = other;
                        flush(&mut word, &mut words);
                        String::new()
                    }
                };
                op.push(c);
                while let Some(&next) = chars.peek() {
                    if matches!(next, '|' | '&' | '>') {
                        op.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                words.push(op);
            }
            other => word.get_or_insert_with(String::new).push(other),
        }
    }
    flush(&mut word, &mut words);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

/// Every `votectl` invocation in a line-based command text: the words from `votectl` up to the next
/// operator. A redirection's target is skipped; `2>` and the like end the command too.
fn votectl_invocations(text: &str) -> Vec<Vec<String>> {
    let is_operator = |w: &str| {
        let symbols = w.trim_start_matches(|c: char| c.is_ascii_digit());
        !symbols.is_empty()
            && symbols
                .chars()
                .all(|c| matches!(c, '|' | '&' | ';' | '>' | '<'))
    };
    let mut found = Vec::new();
    for command in shell_words(text) {
        let mut current: Option<Vec<String>> = None;
        for word in command {
            if is_operator(&word) {
                if let Some(words) = current.take() {
                    found.push(words);
                }
                continue;
            }
            match &mut current {
                Some(words) => words.push(word),
                None if word == "votectl" => current = Some(vec![word]),
                None => {}
            }
        }
        if let Some(words) = current {
            found.push(words);
        }
    }
    found
}

/// Whether votectl's command line accepts `words` (asking for help or the version counts).
fn parses(words: &[String]) -> Result<(), String> {
    match votectl::Cli::try_parse_from(words) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string().lines().next().unwrap_or_default().to_owned()),
    }
}

fn read(path: &Path) -> (String, String) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    (name, std::fs::read_to_string(path).unwrap())
}

#[test]
fn the_parser_helpers_split_commands_like_a_shell() {
    let words = votectl_invocations(
        "votectl render --profile kind | kubectl apply --server-side -f -\n\
         votectl check --catalogue -o markdown > docs/security.md  # regenerate\n\
         make up && votectl --state-dir 'a b' vote dogs -n 2 2>/dev/null\n\
         votectl up --local \\\n  --detach",
    );
    let words: Vec<String> = words.iter().map(|w| w.join(" ")).collect();
    assert_eq!(
        words,
        [
            "votectl render --profile kind",
            "votectl check --catalogue -o markdown",
            "votectl --state-dir a b vote dogs -n 2",
            "votectl up --local --detach",
        ]
    );
    assert_eq!(marker("<!-- docs-check -->"), Some(Marker::Run));
    assert_eq!(
        marker("<!-- docs-check: skip needs a cluster -->"),
        Some(Marker::Skip("needs a cluster".into()))
    );
    assert_eq!(marker("<!-- something else -->"), None);
    let (blocks, inline) = parse(
        "x.md",
        "Run `votectl status` now, or `votectl\nlogs api`.\n<!-- docs-check -->\n\n```sh\nvotectl status\n```\n```sh\nls\n```\n",
    );
    assert_eq!(
        inline,
        [
            (1, "votectl status".to_owned()),
            (1, "votectl logs api".to_owned())
        ]
    );
    assert_eq!(blocks[0].marker, Marker::Run);
    assert_eq!(blocks[0].line, 5);
    assert_eq!(blocks[1].marker, Marker::None);
    assert!(parses(&["votectl".into(), "trace".into(), "--frobnicate".into()]).is_err());
    assert!(parses(&["votectl".into(), "trace".into(), "--help".into()]).is_ok());
}

/// Every shell block is marked, every skip says why, and every `votectl` command shown anywhere
/// parses.
#[test]
fn every_command_in_the_docs_is_marked_and_parses() {
    let mut problems = Vec::new();
    let mut commands = 0;
    for path in doc_files() {
        let (name, text) = read(&path);
        let (blocks, inline) = parse(&name, &text);
        for block in &blocks {
            if block.is_shell() {
                match &block.marker {
                    Marker::None => problems.push(format!(
                        "{}: a ```{} block without <!-- docs-check --> or \
                         <!-- docs-check: skip REASON -->",
                        block.place(),
                        block.lang
                    )),
                    Marker::Skip(reason) if reason.is_empty() => {
                        problems.push(format!("{}: a skipped block must say why", block.place()));
                    }
                    _ => {}
                }
            }
            // Prompts of console transcripts are not part of the command.
            let commands_text: String = block
                .text
                .lines()
                .map(|l| l.strip_prefix("$ ").unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n");
            let shown = if block.is_shell() || block.lang == "console" {
                commands_text
            } else {
                String::new()
            };
            for words in votectl_invocations(&shown) {
                commands += 1;
                if let Err(e) = parses(&words) {
                    problems.push(format!("{}: `{}`: {e}", block.place(), words.join(" ")));
                }
            }
        }
        for (line, span) in inline {
            for words in votectl_invocations(&span) {
                commands += 1;
                if let Err(e) = parses(&words) {
                    problems.push(format!("{name}:{line}: `{}`: {e}", words.join(" ")));
                }
            }
        }
    }
    assert!(
        commands > 20,
        "only {commands} votectl commands found in the docs"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A `votectl` that hands `up` the workspace's binaries and this stack's free ports.
fn wrapper(local: &Local) -> PathBuf {
    let dir = local.dir().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let real = votectl_exe();
    let pinning: Vec<String> = local
        .pinning_args()
        .iter()
        .map(|a| format!("'{a}'"))
        .collect();
    let script = format!(
        "#!/bin/bash\n\
         # docs check: `up` gets the workspace's binaries and free ports; everything else is as written\n\
         if [ \"$1\" = up ]; then exec '{real}' \"$@\" {pinning}; fi\n\
         exec '{real}' \"$@\"\n",
        real = real.display(),
        pinning = pinning.join(" ")
    );
    let path = dir.join("votectl");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs the `<!-- docs-check -->` blocks of every doc, each file in a fresh environment.
#[test]
fn every_runnable_block_runs_and_exits_0() {
    let _turn = one_stack_at_a_time();
    let mut ran = BTreeMap::new();
    for path in doc_files() {
        let (name, text) = read(&path);
        let (blocks, _) = parse(&name, &text);
        let runnable: Vec<&Block> = blocks
            .iter()
            .filter(|b| b.is_shell() && b.marker == Marker::Run)
            .collect();
        if runnable.is_empty() {
            continue;
        }
        let local = Local::new();
        let bin = wrapper(&local);
        let work = local.dir().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let path_var = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        for block in &runnable {
            let out = Command::new("timeout")
                .args(["300", "bash", "-euo", "pipefail", "-c", &block.text])
                .current_dir(&work)
                .env("PATH", &path_var)
                .env("VOTECTL_STATE_DIR", &local.state)
                .env_remove("VOTECTL_API_URL")
                .env_remove("KUBECONFIG")
                .output()
                .unwrap();
            assert_eq!(
                code(&out),
                0,
                "{}: this block failed:\n{}\n{}",
                block.place(),
                block.text,
                both(&out)
            );
        }
        ran.insert(name, runnable.len());
        // `local` goes here: `down --purge` stops whatever the file started.
    }
    for must in ["deploy.md", "runbook.md"] {
        assert!(
            ran.contains_key(must),
            "no runnable block in {must}: {ran:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// architecture.md: the flows, generated from the manifests.

const TABLE: &str = "flows-table";
const DIAGRAM: &str = "flows-diagram";

fn node_id(peer: &Peer) -> String {
    match peer {
        Peer::Workload { component, .. } => component.name().to_owned(),
        Peer::Namespace { namespace } => format!("ns_{}", namespace.replace('-', "_")),
        Peer::Anywhere => "anywhere".to_owned(),
    }
}

/// The flow table: one row per intended flow, in the manifests' order.
fn flows_table(flows: &[Flow]) -> String {
    let mut out = String::from("| From | To | Port |\n|---|---|---|\n");
    for flow in flows {
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} |",
            flow.from,
            flow.to,
            flow.port,
            flow.protocol.as_str()
        );
    }
    out
}

/// The Mermaid diagram: namespaces as boxes, one arrow per pair of ends with all its ports.
fn flows_diagram(flows: &[Flow], namespaces: &Namespaces) -> String {
    let mut out = String::from("```mermaid\nflowchart LR\n");
    // Nodes, grouped by namespace in the order they first appear.
    let mut groups: Vec<(Option<String>, Vec<String>)> = Vec::new();
    let mut seen = Vec::new();
    for peer in flows.iter().flat_map(|f| [&f.from, &f.to]) {
        let id = node_id(peer);
        if seen.contains(&id) {
            continue;
        }
        seen.push(id.clone());
        let (namespace, node) = match peer {
            Peer::Workload {
                namespace,
                component,
            } => {
                let shape = match component {
                    Component::Redis | Component::Postgres => {
                        format!("{id}[(\"{}\")]", component.name())
                    }
                    _ => format!("{id}[\"{}\"]", component.name()),
                };
                (Some(namespace.clone()), shape)
            }
            Peer::Namespace { namespace } => {
                (Some(namespace.clone()), format!("{id}[\"any pod\"]"))
            }
            Peer::Anywhere => (None, format!("{id}([\"anywhere\"])")),
        };
        match groups.iter_mut().find(|(n, _)| *n == namespace) {
            Some((_, nodes)) => nodes.push(node),
            None => groups.push((namespace, vec![node])),
        }
    }
    // The application's namespaces in their fixed order, then any other (DNS, ingress).
    let rank = |namespace: &Option<String>| match namespace {
        None => 0,
        Some(ns) => namespaces
            .all()
            .iter()
            .position(|n| n == ns)
            .map_or(5, |i| i + 1),
    };
    groups.sort_by_key(|(namespace, _)| rank(namespace));
    for (namespace, nodes) in &groups {
        match namespace {
            Some(ns) => {
                let _ = writeln!(out, "    subgraph box_{} [\"{ns}\"]", ns.replace('-', "_"));
                for node in nodes {
                    let _ = writeln!(out, "        {node}");
                }
                out.push_str("    end\n");
            }
            None => {
                for node in nodes {
                    let _ = writeln!(out, "    {node}");
                }
            }
        }
    }
    // Edges: one per (from, to), ports joined; DNS dotted.
    let mut edges: Vec<((String, String), Vec<String>, bool)> = Vec::new();
    for flow in flows {
        let key = (node_id(&flow.from), node_id(&flow.to));
        let port = format!("{}/{}", flow.port, flow.protocol.as_str());
        let infrastructure = matches!(flow.to, Peer::Namespace { .. });
        match edges.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, ports, _)) => ports.push(port),
            None => edges.push((key, vec![port], infrastructure)),
        }
    }
    for ((from, to), ports, dotted) in edges {
        let arrow = if dotted { "-.->" } else { "-->" };
        let _ = writeln!(out, "    {from} {arrow}|\"{}\"| {to}", ports.join(", "));
    }
    out.push_str("```\n");
    out
}

/// The text between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`.
fn section<'a>(text: &'a str, name: &str) -> Option<(usize, usize, &'a str)> {
    let open = format!("<!-- generated:{name} -->\n");
    let close = format!("<!-- /generated:{name} -->");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some((start, end, &text[start..end]))
}

#[test]
fn the_architecture_flows_are_the_manifests_intended_flows() {
    let loaded = Layers::default().load().unwrap();
    let flows = votectl_manifests::intended_flows(&loaded.values);
    let namespaces = Namespaces::of(&loaded.values);
    let expected = [
        (TABLE, flows_table(&flows)),
        (DIAGRAM, flows_diagram(&flows, &namespaces)),
    ];
    let path = docs_dir().join("architecture.md");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let bless = std::env::var_os("VOTECTL_BLESS_DOCS").is_some();
    let mut stale = Vec::new();
    for (name, want) in &expected {
        let (start, end, have) = section(&text, name).unwrap_or_else(|| {
            panic!("architecture.md has no <!-- generated:{name} --> … <!-- /generated:{name} --> section")
        });
        if have != want {
            stale.push(format!(
                "--- {name}: in the doc\n{have}--- from the manifests\n{want}"
            ));
            if bless {
                text.replace_range(start..end, want);
            }
        }
    }
    if bless && !stale.is_empty() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    assert!(
        stale.is_empty(),
        "architecture.md's flows differ from manifests' intended_flows; \
         VOTECTL_BLESS_DOCS=1 cargo test -p votectl --test docs rewrites them:\n{}",
        stale.join("\n")
    );
    // Each namespace is named in the prose too.
    for ns in namespaces.all() {
        assert!(text.contains(ns), "architecture.md never names {ns}");
    }
}

/// Whether some inline code span of `text` holds `name` as one of its words.
fn in_code(text: &str, name: &str) -> bool {
    text.split('`')
        .skip(1)
        .step_by(2)
        .any(|span| span.split_whitespace().any(|w| w == name))
}

/// The names the docs explain are the contract's: a renamed stream or table shows up here.
#[test]
fn the_docs_use_the_contracts_names() {
    use vote_contract::{db, http, stream};
    let architecture = std::fs::read_to_string(docs_dir().join("architecture.md")).unwrap();
    for name in [
        stream::STREAM,
        stream::GROUP,
        stream::DEAD_LETTER_STREAM,
        stream::field::OPTION,
        stream::field::TIMESTAMP,
        stream::field::REQUEST_ID,
        db::PROCESSED_TABLE,
        db::COUNTS_TABLE,
        db::NOTIFY_CHANNEL,
        http::path::VOTE,
        http::path::RESULTS,
        http::path::RESULTS_STREAM,
        "Idempotency-Key",
    ] {
        assert!(
            in_code(&architecture, name),
            "architecture.md does not mention `{name}` (as inline code)"
        );
    }
    let runbook = std::fs::read_to_string(docs_dir().join("runbook.md")).unwrap();
    for name in [stream::STREAM, stream::GROUP, stream::DEAD_LETTER_STREAM] {
        assert!(
            in_code(&runbook, name),
            "runbook.md does not mention `{name}` (as inline code)"
        );
    }
    // Each trace hop the runbook refers to by name exists.
    for hop in votectl::trace::Hop::ALL {
        assert!(
            in_code(&runbook, hop.id()),
            "runbook.md does not explain the trace hop `{}`",
            hop.id()
        );
    }
}
