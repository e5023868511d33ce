//! The Redis stream between the API (producer) and the consumer, and the one codec for its entries.
//!
//! Invariants: every entry the API writes is produced by [`VoteEntry::encode`]; every entry the consumer
//! counts went through [`VoteEntry::decode`]. An entry that does not decode is moved, with its reason, to
//! [`DEAD_LETTER_STREAM`] in the shape built by [`dead_letter_fields`].

use std::collections::HashMap;

use uuid::Uuid;

use crate::options::{VoteOption, VoteOptions};

/// The stream votes are appended to.
pub const STREAM: &str = "votes";
/// The consumer group that counts votes.
pub const GROUP: &str = "vote-consumers";
/// Where entries that cannot be decoded go, with the reason.
pub const DEAD_LETTER_STREAM: &str = "votes:dead";

/// Latest vote time a decoder accepts: 9999-12-31T23:59:59.999Z. PostgreSQL cannot store much later
/// times, and one entry the store refuses would fail its whole batch again and again.
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

/// Field names of a vote entry.
pub mod field {
    /// The option voted for.
    pub const OPTION: &str = "option";
    /// Milliseconds since the Unix epoch at which the API accepted the vote.
    pub const TIMESTAMP: &str = "timestamp";
    /// UUID identifying the vote; the consumer counts each request id at most once.
    pub const REQUEST_ID: &str = "request_id";
    /// All of them, in the order they are written.
    pub const ALL: [&str; 3] = [OPTION, TIMESTAMP, REQUEST_ID];
}

/// Field names of a dead-letter entry.
pub mod dead_field {
    /// Human-readable reason the entry was refused (a [`super::DecodeError`] message).
    pub const REASON: &str = "reason";
    /// Stream id of the refused entry in [`super::STREAM`].
    pub const SOURCE_ID: &str = "source_id";
    /// The refused entry's fields as a JSON object (bytes that are not UTF-8 are replaced).
    pub const PAYLOAD: &str = "payload";
}

/// Why a stream entry is not a vote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{0}` is not UTF-8 text")]
    NotText(&'static str),
    #[error("field `timestamp` is not milliseconds since the epoch: {0:?}")]
    BadTimestamp(String),
    #[error("field `request_id` is not a UUID: {0:?}")]
    BadRequestId(String),
    #[error("option {0:?} is not configured")]
    UnknownOption(String),
}

pub type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// One vote as it travels through the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteEntry {
    pub option: VoteOption,
    pub timestamp_ms: u64,
    pub request_id: Uuid,
}

impl VoteEntry {
    /// A vote accepted now with a fresh request id.
    pub fn new(option: VoteOption) -> Self {
        Self::with_request_id(option, Uuid::new_v4())
    }

    /// A vote accepted now under a caller-chosen request id (the `Idempotency-Key`).
    pub fn with_request_id(option: VoteOption, request_id: Uuid) -> Self {
        let timestamp_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            option,
            timestamp_ms,
            request_id,
        }
    }

    /// The field/value pairs to pass to `XADD`.
    pub fn encode(&self) -> [(&'static str, String); 3] {
        [
            (field::OPTION, self.option.to_string()),
            (field::TIMESTAMP, self.timestamp_ms.to_string()),
            (field::REQUEST_ID, self.request_id.to_string()),
        ]
    }

    /// Decodes an entry's fields; the option must be one of `options`. Unknown extra fields are ignored
    /// so that a newer producer can add fields without breaking an older consumer.
    pub fn decode<K, V>(
        fields: impl IntoIterator<Item = (K, V)>,
        options: &VoteOptions,
    ) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut option = None;
        let mut timestamp = None;
        let mut request_id = None;
        for (key, value) in fields {
            let slot = match key.as_ref() {
                field::OPTION => &mut option,
                field::TIMESTAMP => &mut timestamp,
                field::REQUEST_ID => &mut request_id,
                _ => continue,
            };
            *slot = Some(value.as_ref().to_vec());
        }
        let text = |name: &'static str, value: Option<Vec<u8>>| -> Result<String> {
            let bytes = value.ok_or(DecodeError::MissingField(name))?;
            String::from_utf8(bytes).map_err(|_| DecodeError::NotText(name))
        };
        let option = text(field::OPTION, option)?;
        let timestamp = text(field::TIMESTAMP, timestamp)?;
        let request_id = text(field::REQUEST_ID, request_id)?;

        let option = options
            .get(&option)
            .cloned()
            .ok_or(DecodeError::UnknownOption(option))?;
        let timestamp_ms = match timestamp.parse::<u64>() {
            Ok(ms) if ms <= MAX_TIMESTAMP_MS => ms,
            _ => return Err(DecodeError::BadTimestamp(timestamp)),
        };
        let request_id =
            Uuid::try_parse(&request_id).map_err(|_| DecodeError::BadRequestId(request_id))?;
        Ok(Self {
            option,
            timestamp_ms,
            request_id,
        })
    }

    /// Decodes the field map of an entry read with `XREADGROUP`/`XAUTOCLAIM`.
    pub fn decode_redis(
        fields: &HashMap<String, redis::Value>,
        options: &VoteOptions,
    ) -> Result<Self> {
        Self::decode(
            fields.iter().map(|(k, v)| (k.as_str(), value_bytes(v))),
            options,
        )
    }
}

/// The raw bytes of a stream field value; values that are not strings become empty (and then fail to
/// decode with a precise error rather than a panic).
fn value_bytes(value: &redis::Value) -> Vec<u8> {
    match value {
        redis::Value::BulkString(bytes) => bytes.clone(),
        redis::Value::SimpleString(s) => s.as_bytes().to_vec(),
        redis::Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

/// The field/value pairs of the dead-letter entry for the entry `source_id` refused for `reason`.
pub fn dead_letter_fields(
    source_id: &str,
    reason: &DecodeError,
    original: &HashMap<String, redis::Value>,
) -> [(&'static str, String); 3] {
    let payload: serde_json::Map<String, serde_json::Value> = original
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::Value::String(String::from_utf8_lossy(&value_bytes(v)).into_owned()),
            )
        })
        .collect();
    [
        (dead_field::REASON, reason.to_string()),
        (dead_field::SOURCE_ID, source_id.to_owned()),
        (
            dead_field::PAYLOAD,
            serde_json::Value::Object(payload).to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> VoteOptions {
        "cats,dogs,red-panda-2".parse().unwrap()
    }

    type Fields = Vec<(String, Vec<u8>)>;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn round_trip_for_every_option() {
        let options = options();
        for option in &options {
            let entry = VoteEntry::new(option.clone());
            let decoded = VoteEntry::decode(entry.encode(), &options).unwrap();
            assert_eq!(decoded, entry);
        }
    }

    #[test]
    fn round_trip_through_redis_values() {
        let options = options();
        let entry = VoteEntry::new(options.get("dogs").unwrap().clone());
        let map: HashMap<String, redis::Value> = entry
            .encode()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), redis::Value::BulkString(v.into_bytes())))
            .collect();
        assert_eq!(VoteEntry::decode_redis(&map, &options).unwrap(), entry);
    }

    #[test]
    fn field_names_are_the_documented_ones() {
        // The names are a public interface (docs, trace, dashboards): changing one is a breaking change.
        assert_eq!(field::ALL, ["option", "timestamp", "request_id"]);
        assert_eq!(
            (STREAM, GROUP, DEAD_LETTER_STREAM),
            ("votes", "vote-consumers", "votes:dead")
        );
    }

    #[test]
    fn each_malformed_shape_has_its_error() {
        let o = options();
        let id = "0b6b3a3c-2f0e-4f55-9a43-9a4a1b2c3d4e";
        let cases: Vec<(Fields, DecodeError)> = vec![
            (
                fields(&[("timestamp", "1"), ("request_id", id)]),
                DecodeError::MissingField("option"),
            ),
            (
                fields(&[("vote", "dogs"), ("timestamp", "1"), ("request_id", id)]),
                DecodeError::MissingField("option"),
            ),
            (
                fields(&[("option", "dogs"), ("request_id", id)]),
                DecodeError::MissingField("timestamp"),
            ),
            (
                fields(&[("option", "dogs"), ("timestamp", "1")]),
                DecodeError::MissingField("request_id"),
            ),
            (
                fields(&[("option", "dogs"), ("timestamp", "-5"), ("request_id", id)]),
                DecodeError::BadTimestamp("-5".into()),
            ),
            (
                fields(&[
                    ("option", "dogs"),
                    ("timestamp", "2024-01-01"),
                    ("request_id", id),
                ]),
                DecodeError::BadTimestamp("2024-01-01".into()),
            ),
            (
                fields(&[
                    ("option", "dogs"),
                    ("timestamp", "1"),
                    ("request_id", "nope"),
                ]),
                DecodeError::BadRequestId("nope".into()),
            ),
            (
                fields(&[("option", "birds"), ("timestamp", "1"), ("request_id", id)]),
                DecodeError::UnknownOption("birds".into()),
            ),
            (
                fields(&[("option", "DOGS"), ("timestamp", "1"), ("request_id", id)]),
                DecodeError::UnknownOption("DOGS".into()),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                VoteEntry::decode(input.clone(), &o),
                Err(expected),
                "{input:?}"
            );
        }
        let not_utf8 = vec![
            ("option".to_owned(), vec![0xff, 0xfe]),
            ("timestamp".to_owned(), b"1".to_vec()),
            ("request_id".to_owned(), id.as_bytes().to_vec()),
        ];
        assert_eq!(
            VoteEntry::decode(not_utf8, &o),
            Err(DecodeError::NotText("option"))
        );
    }

    #[test]
    fn dead_letter_keeps_reason_source_and_payload() {
        let mut original = HashMap::new();
        original.insert(
            "vote".to_owned(),
            redis::Value::BulkString(b"dogs".to_vec()),
        );
        let reason = DecodeError::MissingField("option");
        let [reason_f, source, payload] = dead_letter_fields("1-1", &reason, &original);
        assert_eq!(reason_f, ("reason", "missing field `option`".to_owned()));
        assert_eq!(source, ("source_id", "1-1".to_owned()));
        assert_eq!(payload.1, r#"{"vote":"dogs"}"#);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(pairs in proptest::collection::vec((".{0,12}", proptest::collection::vec(proptest::num::u8::ANY, 0..40)), 0..6)) {
            let _ = VoteEntry::decode(pairs, &options());
        }
    }
}
