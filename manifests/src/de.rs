//! A serde `Deserializer` over a located values tree: the typed schema ([`crate::Values`]) decides what
//! each plain scalar means, and every error names the origin and key path of the offending value.
//!
//! Invariants:
//! - unknown keys are refused before the struct sees them, with a did-you-mean from the struct's own
//!   field names (so the suggestion can never name a key that does not exist);
//! - a null value in a mapping counts as absent (the default applies), matching the merge rule;
//! - an error is located once, at the innermost node that produced it; outer levels keep that location.

use std::fmt;

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::error::{Error, Origin};
use crate::tree::{Entry, Kind, Node};

/// Deserializes `T` from `node`, reporting the first problem with its origin and key path.
pub(crate) fn from_node<T: de::DeserializeOwned>(node: &Node) -> Result<T, Error> {
    let path = Path::Root;
    T::deserialize(NodeDe { node, path: &path })
        .map_err(|e| e.locate(&node.origin, &path).into_error())
}

/// A key path, built on the stack while descending.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("(top level)"),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// An error on its way out of deserialization; located by the innermost node that sees it.
#[derive(Debug)]
pub(crate) struct DeError {
    message: String,
    at: Option<(Origin, String)>,
    /// Set by `missing_field`, so the struct can point at a null that unset a required key.
    missing: Option<&'static str>,
}

impl DeError {
    fn at(node: &Node, path: &Path<'_>, message: impl Into<String>) -> Self {
        DeError {
            message: message.into(),
            at: Some((node.origin.clone(), path.to_string())),
            missing: None,
        }
    }

    fn locate(mut self, origin: &Origin, path: &Path<'_>) -> Self {
        if self.at.is_none() {
            self.at = Some((origin.clone(), path.to_string()));
        }
        self
    }

    fn into_error(self) -> Error {
        let (origin, path) = self
            .at
            .unwrap_or_else(|| (Origin::Default, Path::Root.to_string()));
        Error::Value {
            origin,
            path,
            message: self.message,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            at: None,
            missing: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            message: format!("missing key `{field}`"),
            at: None,
            missing: Some(field),
        }
    }
}

/// The closest of `candidates` to `given`, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'c>(given: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = given.to_ascii_lowercase().replace(['_', '-'], "");
    candidates
        .iter()
        .map(|c| {
            let distance = strsim::damerau_levenshtein(given, c)
                .min(strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()));
            (distance, *c)
        })
        .filter(|(distance, c)| *distance <= (c.len().max(given.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct NodeDe<'a> {
    node: &'a Node,
    path: &'a Path<'a>,
}

impl<'a> NodeDe<'a> {
    fn fail(&self, message: impl Into<String>) -> DeError {
        DeError::at(self.node, self.path, message)
    }

    fn expected(&self, what: &str) -> DeError {
        self.fail(format!("expected {what}, found {}", self.node.describe()))
    }

    fn text(&self) -> Option<&'a str> {
        match &self.node.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    fn plain(&self) -> Option<&'a str> {
        match &self.node.kind {
            Kind::Scalar { text, plain: true } => Some(text),
            _ => None,
        }
    }

    fn locate(&self, e: DeError) -> DeError {
        e.locate(&self.node.origin, self.path)
    }

    fn integer<T: TryFrom<i128> + Copy>(&self, what: &str) -> Result<T, DeError> {
        let text = self.plain().ok_or_else(|| self.expected(what))?;
        let value: i128 = text
            .strip_prefix('+')
            .unwrap_or(text)
            .parse()
            .map_err(|_| self.expected(what))?;
        T::try_from(value).map_err(|_| self.expected(what))
    }
}

macro_rules! integer {
    ($($method:ident $visit:ident $ty:ty => $what:literal,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let value: $ty = self.integer($what)?;
            visitor.$visit(value).map_err(|e| self.locate(e))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Scalar { text, plain: false } => visitor.visit_str(text),
            Kind::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => visitor.visit_bool(true),
                "false" | "False" | "FALSE" => visitor.visit_bool(false),
                t => match (t.parse::<u64>(), t.parse::<i64>(), t.parse::<f64>()) {
                    (Ok(u), _, _) => visitor.visit_u64(u),
                    (_, Ok(i), _) => visitor.visit_i64(i),
                    (_, _, Ok(f)) if t.chars().any(|c| c.is_ascii_digit()) => visitor.visit_f64(f),
                    _ => visitor.visit_str(t),
                },
            },
            Kind::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
                path: self.path,
            }),
            Kind::Map(entries) => visitor.visit_map(MapAccess::new(entries, self.path)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = match self.plain() {
            Some("true" | "True" | "TRUE") => true,
            Some("false" | "False" | "FALSE") => false,
            _ => return Err(self.expected("true or false")),
        };
        visitor.visit_bool(value).map_err(|e| self.locate(e))
    }

    integer! {
        deserialize_i8 visit_i8 i8 => "a small integer",
        deserialize_i16 visit_i16 i16 => "an integer",
        deserialize_i32 visit_i32 i32 => "an integer",
        deserialize_i64 visit_i64 i64 => "an integer",
        deserialize_u8 visit_u8 u8 => "an integer from 0 to 255",
        deserialize_u16 visit_u16 u16 => "an integer from 0 to 65535",
        deserialize_u32 visit_u32 u32 => "a non-negative integer",
        deserialize_u64 visit_u64 u64 => "a non-negative integer",
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value: f64 = self
            .plain()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| self.expected("a number"))?;
        visitor.visit_f64(value).map_err(|e| self.locate(e))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.text().ok_or_else(|| self.expected("a string"))?;
        visitor.visit_str(text).map_err(|e| self.locate(e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let path = self.path;
        let origin = &self.node.origin;
        match self.node.kind {
            Kind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.locate(origin, path))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let path = self.path;
        let origin = &self.node.origin;
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.locate(origin, path))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let items: &[Node] = match &self.node.kind {
            Kind::Seq(items) => items,
            Kind::Null => &[],
            _ => return Err(self.expected("a list")),
        };
        visitor
            .visit_seq(SeqAccess {
                items: items.iter().enumerate(),
                path: self.path,
            })
            .map_err(|e| self.locate(e))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let entries: &[Entry] = match &self.node.kind {
            Kind::Map(entries) => entries,
            Kind::Null => &[],
            _ => return Err(self.expected("a mapping")),
        };
        visitor
            .visit_map(MapAccess::new(entries, self.path))
            .map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let entries: &[Entry] = match &self.node.kind {
            Kind::Map(entries) => entries,
            Kind::Null => &[],
            _ => {
                return Err(self.fail(format!(
                    "expected a mapping with keys {}, found {}",
                    list(fields),
                    self.node.describe()
                )));
            }
        };
        if let Some(unknown) = entries.iter().find(|e| !fields.contains(&e.key.as_str())) {
            let path = Path::Key(self.path, &unknown.key);
            let hint = match did_you_mean(&unknown.key, fields) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("known keys here: {}", list(fields)),
            };
            return Err(DeError {
                message: format!("unknown key `{}`; {hint}", unknown.key),
                at: Some((unknown.key_origin.clone(), path.to_string())),
                missing: None,
            });
        }
        visitor
            .visit_map(MapAccess::new(entries, self.path))
            .map_err(|e| match e.missing {
                Some(field) if e.at.is_none() => {
                    match entries.iter().find(|entry| entry.key == field) {
                        Some(unset) => DeError {
                            message: format!(
                                "`{field}` is set to null, but it is required (only optional keys \
                                 may be null)"
                            ),
                            at: Some((
                                unset.value.origin.clone(),
                                Path::Key(self.path, field).to_string(),
                            )),
                            missing: None,
                        },
                        None => self.locate(e),
                    }
                }
                _ => self.locate(e),
            })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let text = self
            .text()
            .ok_or_else(|| self.expected(&format!("one of {}", list(variants))))?;
        if !variants.contains(&text) {
            let hint = did_you_mean(text, variants)
                .map(|v| format!(" (did you mean `{v}`?)"))
                .unwrap_or_default();
            return Err(self.fail(format!(
                "expected one of {}, found `{text}`{hint}",
                list(variants)
            )));
        }
        let variant: StringDeserializer<DeError> = text.to_owned().into_deserializer();
        visitor.visit_enum(variant).map_err(|e| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct tuple tuple_struct
    }
}

struct SeqAccess<'a, I> {
    items: I,
    path: &'a Path<'a>,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for SeqAccess<'a, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = Path::Index(self.path, i);
        seed.deserialize(NodeDe { node, path: &path })
            .map(Some)
            .map_err(|e| e.locate(&node.origin, &path))
    }
}

struct MapAccess<'a> {
    entries: std::slice::Iter<'a, Entry>,
    current: Option<&'a Entry>,
    path: &'a Path<'a>,
}

impl<'a> MapAccess<'a> {
    fn new(entries: &'a [Entry], path: &'a Path<'a>) -> Self {
        MapAccess {
            entries: entries.iter(),
            current: None,
            path,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        // A null value is an absent value: the field keeps its default.
        let Some(entry) = self
            .entries
            .by_ref()
            .find(|e| !matches!(e.value.kind, Kind::Null))
        else {
            return Ok(None);
        };
        self.current = Some(entry);
        let key: StringDeserializer<DeError> = entry.key.clone().into_deserializer();
        let path = Path::Key(self.path, &entry.key);
        seed.deserialize(key)
            .map(Some)
            .map_err(|e| e.locate(&entry.key_origin, &path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let entry = self
            .current
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value requested before its key"))?;
        let path = Path::Key(self.path, &entry.key);
        seed.deserialize(NodeDe {
            node: &entry.value,
            path: &path,
        })
        .map_err(|e| e.locate(&entry.value.origin, &path))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::tree::parse_yaml;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
    struct Image {
        repository: String,
        tag: String,
        pull_policy: Option<Policy>,
        port: u16,
        enabled: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Policy {
        Always,
        Never,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Top {
        images: BTreeMap<String, Image>,
        list: Vec<String>,
    }

    fn load(text: &str) -> Result<Top, Error> {
        from_node(&parse_yaml("v.yaml", text).unwrap())
    }

    #[test]
    fn the_schema_decides_scalar_types() {
        let top = load("images:\n  api: {tag: 1.10, repository: 0755, port: 8000, enabled: true}\nlist: [yes, 1.0, on]\n")
            .unwrap();
        let api = &top.images["api"];
        assert_eq!(api.tag, "1.10");
        assert_eq!(api.repository, "0755");
        assert_eq!(api.port, 8000);
        assert!(api.enabled);
        assert_eq!(top.list, ["yes", "1.0", "on"]);
    }

    #[test]
    fn errors_name_origin_and_path() {
        let err = load("images:\n  api:\n    tag: {a: 1}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:3:10: images.api.tag: expected a string, found a mapping"
        );
        let err = load("images:\n  api:\n    port: 80000\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:3:11: images.api.port: expected an integer from 0 to 65535, found `80000`"
        );
        let err = load("images:\n  api:\n    enabled: yes\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:3:14: images.api.enabled: expected true or false, found `yes`"
        );
        let err = load("list:\n  - a\n  - [b]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:3:5: list[1]: expected a string, found a sequence"
        );
    }

    #[test]
    fn unknown_keys_suggest_the_closest() {
        let err = load("images:\n  api:\n    tga: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:3:5: images.api.tga: unknown key `tga`; did you mean `tag`?"
        );
        let err = load("images:\n  api:\n    pull_policy: Never\n").unwrap_err();
        assert!(
            err.to_string().ends_with("did you mean `pullPolicy`?"),
            "{err}"
        );
        let err = load("nothing: like\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:1:1: nothing: unknown key `nothing`; known keys here: `images`, `list`"
        );
    }

    #[test]
    fn enums_list_their_variants() {
        let err = load("images:\n  api:\n    pullPolicy: always\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:3:17: images.api.pullPolicy: expected one of `Always`, `Never`, found \
             `always` (did you mean `Always`?)"
        );
    }

    #[test]
    fn null_means_default() {
        let top = load("images:\n  api:\n    tag: ~\n    port: 1\nlist: null\n").unwrap();
        assert_eq!(top.images["api"].tag, "");
        assert_eq!(top.images["api"].port, 1);
        assert!(top.list.is_empty());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Required {
        a: String,
        b: Option<String>,
    }

    #[test]
    fn required_keys_point_at_the_null_that_unset_them() {
        let tree = parse_yaml(
            "v.yaml",
            "b: x
a: ~
",
        )
        .unwrap();
        let err = from_node::<Required>(&tree).unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:2:4: a: `a` is set to null, but it is required (only optional keys may be null)"
        );
        let tree = parse_yaml(
            "v.yaml", "b: x
",
        )
        .unwrap();
        let err = from_node::<Required>(&tree).unwrap_err();
        assert_eq!(err.to_string(), "v.yaml:1:1: (top level): missing key `a`");
        let tree = parse_yaml(
            "v.yaml",
            "a: x
b: null
",
        )
        .unwrap();
        assert!(from_node::<Required>(&tree).unwrap().b.is_none());
    }
}
