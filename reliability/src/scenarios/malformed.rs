//! A flood of malformed entries written straight to the `votes` stream (the API cannot produce them)
//! while good votes arrive through the API. Proven: every malformed entry lands in `votes:dead` with
//! a reason and its source id, exactly once; every good vote is counted once; nothing else is.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use vote_contract::stream::{DEAD_LETTER_STREAM, STREAM, dead_field, field};
use votectl::local::Component;

use crate::figures::Figures;
use crate::load::{self, LoadConfig, Progress, Voter};
use crate::stack::{LocalStack, wait_until};
use crate::{Ctx, scenarios};

/// The malformed shapes, in turn: (fields, the reason's beginning as the contract words it).
fn shape(i: u64) -> (Vec<(&'static str, Vec<u8>)>, &'static str) {
    let id = uuid::Uuid::new_v4().to_string().into_bytes();
    let ts = b"1700000000000".to_vec();
    match i % 7 {
        0 => (
            vec![(field::TIMESTAMP, ts), (field::REQUEST_ID, id)],
            "missing field `option`",
        ),
        // The original system's bug: the field called `vote`.
        1 => (
            vec![
                ("vote", b"dogs".to_vec()),
                (field::TIMESTAMP, ts),
                (field::REQUEST_ID, id),
            ],
            "missing field `option`",
        ),
        2 => (
            vec![
                (field::OPTION, b"birds".to_vec()),
                (field::TIMESTAMP, ts),
                (field::REQUEST_ID, id),
            ],
            "option \"birds\" is not configured",
        ),
        3 => (
            vec![
                (field::OPTION, b"dogs".to_vec()),
                (field::TIMESTAMP, b"yesterday".to_vec()),
                (field::REQUEST_ID, id),
            ],
            "field `timestamp`",
        ),
        4 => (
            vec![
                (field::OPTION, b"cats".to_vec()),
                (field::TIMESTAMP, ts),
                (field::REQUEST_ID, b"not-a-uuid".to_vec()),
            ],
            "field `request_id`",
        ),
        5 => (
            vec![
                (field::OPTION, vec![0xff, 0xfe, 0x00]),
                (field::TIMESTAMP, ts),
                (field::REQUEST_ID, id),
            ],
            "field `option` is not UTF-8",
        ),
        _ => (
            vec![(field::OPTION, b"cats".to_vec()), (field::TIMESTAMP, ts)],
            "missing field `request_id`",
        ),
    }
}

pub async fn run(ctx: &Ctx, stack: &LocalStack) -> anyhow::Result<Figures> {
    let size = &ctx.size;
    let mut figures = Figures::new("malformed");
    let api = stack.url(Component::Api)?;
    let redis_url = stack.url(Component::Redis)?;
    let options = stack.options()?;
    let voter = Voter::new(&api, size.concurrency)?;
    let mut config = LoadConfig::new(size.malformed_good);
    config.concurrency = size.concurrency;
    let progress = Progress::default();
    let load = tokio::spawn({
        let (progress, options) = (progress.clone(), options.clone());
        async move { load::run(&voter, &options, &config, &progress).await }
    });

    let mut con = redis::Client::open(redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut expected: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut sent = 0;
    while sent < size.malformed {
        let n = (size.malformed - sent).min(100);
        let mut pipe = redis::pipe();
        let mut reasons = Vec::new();
        for i in sent..sent + n {
            let (fields, reason) = shape(i);
            pipe.xadd(STREAM, "*", &fields);
            reasons.push(reason);
        }
        let ids: Vec<String> = pipe.query_async(&mut con).await?;
        expected.extend(ids.into_iter().zip(reasons));
        sent += n;
        // Interleave with the API's votes rather than one burst.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let flood_end = Instant::now();
    let report = load.await?;

    let dead = wait_until(size.settle, || {
        let mut con = con.clone();
        async move {
            redis::cmd("XLEN")
                .arg(DEAD_LETTER_STREAM)
                .query_async::<u64>(&mut con)
                .await
                .is_ok_and(|n| n >= size.malformed)
        }
    })
    .await;
    figures.check(
        dead.is_ok(),
        format!(
            "votes:dead did not reach {} entries within {}s",
            size.malformed,
            size.settle.as_secs()
        ),
    );
    let audit = scenarios::settle_and_audit(
        size,
        stack,
        &report.ledger,
        &HashSet::new(),
        flood_end,
        None,
        &mut figures,
    )
    .await?;
    figures.with_audit(&audit);

    // Every dead letter names an entry we wrote, with the reason expected for its shape.
    let mut seen = HashSet::new();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut cursor = "-".to_owned();
    loop {
        let page: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(DEAD_LETTER_STREAM)
            .arg(&cursor)
            .arg("+")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await?;
        if page.ids.is_empty() {
            break;
        }
        for entry in &page.ids {
            let get = |k: &str| entry.get::<String>(k).unwrap_or_default();
            let (source, reason) = (get(dead_field::SOURCE_ID), get(dead_field::REASON));
            let kind = reason.split(':').next().unwrap_or_default().to_owned();
            *by_reason.entry(kind).or_default() += 1;
            match expected.get(&source) {
                Some(want) if reason.starts_with(want) => {}
                Some(want) => wrong.push(format!("{source}: {reason:?}, expected {want:?}")),
                None => wrong.push(format!("{source}: not an entry the suite wrote")),
            }
            if !seen.insert(source) {
                wrong.push("a source id dead-lettered twice".to_owned());
            }
            if get(dead_field::PAYLOAD).is_empty() {
                wrong.push("a dead letter without its payload".to_owned());
            }
        }
        let last = page.ids.last().map(|e| e.id.clone()).unwrap_or_default();
        cursor = format!("({last}");
    }
    figures.note(format!(
        "{} malformed entries written, {} dead-lettered, by reason: {}",
        size.malformed,
        seen.len(),
        by_reason
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    figures.check(
        seen.len() as u64 == size.malformed,
        format!(
            "{} of {} malformed entries were dead-lettered",
            seen.len(),
            size.malformed
        ),
    );
    wrong.truncate(5);
    figures.check(
        wrong.is_empty(),
        format!("dead letters that do not match: {}", wrong.join("; ")),
    );
    figures.check(
        audit.counted == audit.acknowledged,
        format!(
            "counted {} != good votes acknowledged {}",
            audit.counted, audit.acknowledged
        ),
    );
    Ok(figures)
}
