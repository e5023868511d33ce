//! Turning raw stream entries into work: each entry either is a vote to count or goes to the
//! dead-letter stream, and every entry of a batch is acknowledged once the batch is done.
//!
//! Invariants: decoding goes only through [`VoteEntry::decode_redis`] (the contract's one decoder);
//! [`route`] never drops an entry: each id ends up in [`Routed::ack`], and also in exactly one of
//! `votes`, `dead` or `deleted`. Nothing here panics on user data.

use std::collections::HashMap;

use redis::Value;
use vote_contract::stream::{DecodeError, dead_letter_fields};
use vote_contract::{VoteEntry, VoteOptions};

/// Latest vote time accepted; later ones are dead-lettered by the contract's decoder.
pub use vote_contract::stream::MAX_TIMESTAMP_MS;

/// One entry as Redis returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    /// Stream id (`<ms>-<seq>`).
    pub id: String,
    /// The fields; `None` when the entry was deleted from the stream while it was pending (Redis then
    /// returns the id alone).
    pub fields: Option<HashMap<String, Value>>,
}

/// A decoded vote and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub stream_id: String,
    pub entry: VoteEntry,
}

/// An entry that is not a vote, in the shape written to `votes:dead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub source_id: String,
    pub reason: DecodeError,
    pub fields: [(&'static str, String); 3],
}

/// A batch sorted by what to do with each entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Routed {
    pub votes: Vec<Vote>,
    pub dead: Vec<DeadLetter>,
    /// Ids whose entry no longer exists: nothing to count, only to acknowledge.
    pub deleted: Vec<String>,
    /// Every id of the batch, in stream order: what to `XACK` after the commit.
    pub ack: Vec<String>,
}

impl Routed {
    pub fn is_empty(&self) -> bool {
        self.ack.is_empty()
    }
}

/// Decodes every entry against `options`.
pub fn route(entries: Vec<RawEntry>, options: &VoteOptions) -> Routed {
    let mut routed = Routed {
        votes: Vec::with_capacity(entries.len()),
        ack: Vec::with_capacity(entries.len()),
        ..Routed::default()
    };
    for RawEntry { id, fields } in entries {
        routed.ack.push(id.clone());
        let Some(fields) = fields else {
            routed.deleted.push(id);
            continue;
        };
        match decode(&fields, options) {
            Ok(entry) => routed.votes.push(Vote {
                stream_id: id,
                entry,
            }),
            Err(reason) => {
                let fields = dead_letter_fields(&id, &reason, &fields);
                routed.dead.push(DeadLetter {
                    source_id: id,
                    reason,
                    fields,
                });
            }
        }
    }
    routed
}

/// The contract's decoder (which also refuses times PostgreSQL cannot hold).
fn decode(
    fields: &HashMap<String, Value>,
    options: &VoteOptions,
) -> Result<VoteEntry, DecodeError> {
    VoteEntry::decode_redis(fields, options)
}

/// Why a Redis reply did not have the shape of a stream read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected reply to {command}: {detail}")]
pub struct ReplyError {
    pub command: &'static str,
    pub detail: String,
}

fn reply_error(command: &'static str, detail: impl Into<String>) -> ReplyError {
    ReplyError {
        command,
        detail: detail.into(),
    }
}

/// The entries of an `XREADGROUP` reply for a single stream (RESP2 or RESP3; nil when the block timed
/// out).
pub fn parse_read_reply(reply: Value) -> Result<Vec<RawEntry>, ReplyError> {
    const CMD: &str = "XREADGROUP";
    let streams: Vec<(Value, Value)> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(pair) => {
                    let mut pair = pair.into_iter();
                    match (pair.next(), pair.next()) {
                        (Some(k), Some(v)) => Ok((k, v)),
                        _ => Err(reply_error(CMD, "stream without entries")),
                    }
                }
                other => Err(reply_error(CMD, format!("stream item {other:?}"))),
            })
            .collect::<Result<_, _>>()?,
        Value::Map(pairs) => pairs,
        other => return Err(reply_error(CMD, format!("{other:?}"))),
    };
    let mut out = Vec::new();
    for (_key, entries) in streams {
        out.extend(parse_entries(CMD, entries)?);
    }
    Ok(out)
}

/// An `XAUTOCLAIM` reply: the cursor to continue from (`0-0` when the scan is complete), the claimed
/// entries, and the ids that were pending but no longer exist (Redis 7 drops them from the pending
/// list itself).
pub fn parse_autoclaim_reply(
    reply: Value,
) -> Result<(String, Vec<RawEntry>, Vec<String>), ReplyError> {
    const CMD: &str = "XAUTOCLAIM";
    let Value::Array(items) = reply else {
        return Err(reply_error(CMD, format!("{reply:?}")));
    };
    let mut items = items.into_iter();
    let cursor = items
        .next()
        .and_then(|v| text(&v))
        .ok_or_else(|| reply_error(CMD, "no cursor"))?;
    let entries = parse_entries(CMD, items.next().unwrap_or(Value::Nil))?;
    let deleted = match items.next() {
        Some(Value::Array(ids)) => ids.iter().filter_map(text).collect(),
        _ => Vec::new(),
    };
    Ok((cursor, entries, deleted))
}

fn parse_entries(command: &'static str, entries: Value) -> Result<Vec<RawEntry>, ReplyError> {
    let entries = match entries {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(entries) => entries,
        other => return Err(reply_error(command, format!("entries {other:?}"))),
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(parts) = entry else {
            // Redis 6.2 answers a claimed-but-deleted entry with a bare nil: nothing to do with it.
            continue;
        };
        let mut parts = parts.into_iter();
        let id = parts
            .next()
            .as_ref()
            .and_then(text)
            .ok_or_else(|| reply_error(command, "entry without id"))?;
        let fields = match parts.next() {
            None | Some(Value::Nil) => None,
            Some(Value::Array(flat)) => {
                let mut map = HashMap::with_capacity(flat.len() / 2);
                let mut flat = flat.into_iter();
                while let Some(key) = flat.next() {
                    let value = flat
                        .next()
                        .ok_or_else(|| reply_error(command, format!("odd field list in {id}")))?;
                    map.insert(lossy(&key), value);
                }
                Some(map)
            }
            Some(Value::Map(pairs)) => {
                Some(pairs.into_iter().map(|(k, v)| (lossy(&k), v)).collect())
            }
            Some(other) => return Err(reply_error(command, format!("fields of {id}: {other:?}"))),
        };
        out.push(RawEntry { id, fields });
    }
    Ok(out)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// A field name; a name that is not UTF-8 cannot be one of ours, so a lossy copy is as good.
fn lossy(value: &Value) -> String {
    match value {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use vote_contract::stream::dead_field;

    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn raw(id: &str, pairs: &[(&str, &str)]) -> RawEntry {
        RawEntry {
            id: id.to_owned(),
            fields: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), bulk(v)))
                    .collect(),
            ),
        }
    }

    fn encoded(id: &str, entry: &VoteEntry) -> RawEntry {
        RawEntry {
            id: id.to_owned(),
            fields: Some(
                entry
                    .encode()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), bulk(&v)))
                    .collect(),
            ),
        }
    }

    const ID: &str = "0b6b3a3c-2f0e-4f55-9a43-9a4a1b2c3d4e";

    #[test]
    fn good_entries_are_votes_bad_ones_dead_letters_and_all_are_acked() {
        let options = VoteOptions::default();
        let dogs = VoteEntry::new(options.get("dogs").unwrap().clone());
        let cats = VoteEntry::new(options.get("cats").unwrap().clone());
        let routed = route(
            vec![
                encoded("1-0", &dogs),
                raw(
                    "1-1",
                    &[("vote", "dogs"), ("timestamp", "1"), ("request_id", ID)],
                ),
                raw(
                    "1-2",
                    &[("option", "birds"), ("timestamp", "1"), ("request_id", ID)],
                ),
                raw(
                    "1-3",
                    &[("option", "dogs"), ("timestamp", "x"), ("request_id", ID)],
                ),
                raw(
                    "1-4",
                    &[("option", "dogs"), ("timestamp", "1"), ("request_id", "no")],
                ),
                RawEntry {
                    id: "1-5".into(),
                    fields: None,
                },
                encoded("1-6", &cats),
            ],
            &options,
        );
        assert_eq!(
            routed.ack,
            ["1-0", "1-1", "1-2", "1-3", "1-4", "1-5", "1-6"]
        );
        assert_eq!(
            routed.votes,
            [
                Vote {
                    stream_id: "1-0".into(),
                    entry: dogs
                },
                Vote {
                    stream_id: "1-6".into(),
                    entry: cats
                }
            ]
        );
        assert_eq!(routed.deleted, ["1-5"]);
        let reasons: Vec<_> = routed
            .dead
            .iter()
            .map(|d| (d.source_id.as_str(), d.reason.clone()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("1-1", DecodeError::MissingField("option")),
                ("1-2", DecodeError::UnknownOption("birds".into())),
                ("1-3", DecodeError::BadTimestamp("x".into())),
                ("1-4", DecodeError::BadRequestId("no".into())),
            ]
        );
        let [reason, source, payload] = &routed.dead[0].fields;
        assert_eq!(
            *reason,
            (dead_field::REASON, "missing field `option`".to_owned())
        );
        assert_eq!(*source, (dead_field::SOURCE_ID, "1-1".to_owned()));
        let payload: serde_json::Value = serde_json::from_str(&payload.1).unwrap();
        assert_eq!(payload["vote"], "dogs");
        assert_eq!(payload["request_id"], ID);
    }

    #[test]
    fn a_time_postgres_cannot_store_is_dead_lettered() {
        let options = VoteOptions::default();
        let ok = MAX_TIMESTAMP_MS.to_string();
        let too_late = (MAX_TIMESTAMP_MS + 1).to_string();
        let routed = route(
            vec![
                raw(
                    "1-0",
                    &[("option", "cats"), ("timestamp", &ok), ("request_id", ID)],
                ),
                raw(
                    "1-1",
                    &[
                        ("option", "cats"),
                        ("timestamp", &too_late),
                        ("request_id", ID),
                    ],
                ),
            ],
            &options,
        );
        assert_eq!(routed.votes.len(), 1);
        assert_eq!(routed.dead[0].reason, DecodeError::BadTimestamp(too_late));
    }

    #[test]
    fn parses_resp2_and_resp3_read_replies() {
        assert_eq!(parse_read_reply(Value::Nil).unwrap(), []);
        let entries = Value::Array(vec![
            Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("option"), bulk("dogs")]),
            ]),
            Value::Array(vec![bulk("1-1"), Value::Nil]),
        ]);
        let expected = vec![
            raw("1-0", &[("option", "dogs")]),
            RawEntry {
                id: "1-1".into(),
                fields: None,
            },
        ];
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("votes"), entries.clone()])]);
        assert_eq!(parse_read_reply(resp2).unwrap(), expected);
        let resp3 = Value::Map(vec![(bulk("votes"), entries)]);
        assert_eq!(parse_read_reply(resp3).unwrap(), expected);
        assert!(parse_read_reply(Value::Int(3)).is_err());
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("votes"),
            Value::Array(vec![Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("option")]),
            ])]),
        ])]);
        assert!(parse_read_reply(odd).is_err());
    }

    #[test]
    fn parses_autoclaim_replies() {
        let reply = Value::Array(vec![
            bulk("0-0"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("2-0"),
                    Value::Array(vec![bulk("option"), bulk("cats")]),
                ]),
                Value::Nil,
            ]),
            Value::Array(vec![bulk("1-0")]),
        ]);
        let (cursor, entries, deleted) = parse_autoclaim_reply(reply).unwrap();
        assert_eq!(cursor, "0-0");
        assert_eq!(entries, [raw("2-0", &[("option", "cats")])]);
        assert_eq!(deleted, ["1-0"]);
    }
}
