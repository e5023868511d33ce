//! A YAML tree that remembers where every value came from, and the layering operations on it.
//!
//! Values are layered the way Helm users know (profile, then each `-f` file, then each `--set`), as a
//! merge of trees *before* the one typed deserialization, so the typed schema sees the final picture.
//! Two things make this tree different from a `serde_json::Value`:
//! - every node keeps its [`Origin`], so an error after merging still names the file, line and column
//!   (or the `--set` argument) that supplied the bad value;
//! - a plain scalar keeps its original spelling: whether `1.10` is a string or a number is decided by
//!   the typed schema, never by the parser (an image tag `1.10` stays `1.10`).
//!
//! Invariants: mapping keys are unique (a duplicate is an error at its line); a `null` value in a later
//! layer unsets the key (Helm's rule; only optional keys may be unset); sequences and scalars replace,
//! mappings merge key by key.

use std::collections::HashMap;
use std::sync::Arc;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use crate::error::{Error, Origin, Result};

/// One value in a values tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// `~`, `null` or nothing: "no value here".
    Null,
    /// A scalar as written; `plain` when unquoted (its type is then up to the schema).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_origin: Origin,
    pub value: Node,
}

impl Node {
    pub fn empty_map(origin: Origin) -> Self {
        Node {
            kind: Kind::Map(Vec::new()),
            origin,
        }
    }

    /// A short description for "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "null".to_owned(),
            Kind::Scalar { text, .. } => format!("`{}`", vote_contract::settings::redact(text)),
            Kind::Seq(_) => "a sequence".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
        }
    }

    /// The node at `path` (mapping keys only), if present.
    pub fn lookup(&self, path: &[&str]) -> Option<&Node> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|e| e.key == *first)
                .and_then(|e| e.value.lookup(rest)),
            _ => None,
        }
    }

    /// The deepest node on `path` that exists, for pointing at a value a check found wrong.
    pub fn closest(&self, path: &[&str]) -> &Node {
        let Some((first, rest)) = path.split_first() else {
            return self;
        };
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|e| e.key == *first)
                .map_or(self, |e| e.value.closest(rest)),
            _ => self,
        }
    }
}

/// Merges `over` onto `base`: mappings key by key, anything else replaced; a null unsets the key.
pub(crate) fn merge(base: &mut Node, over: Node) {
    match (&mut base.kind, over.kind) {
        (Kind::Map(base_entries), Kind::Map(over_entries)) => {
            for entry in over_entries {
                match base_entries.iter().position(|e| e.key == entry.key) {
                    // A null stays as a tombstone: absent for the schema, but it keeps its origin
                    // so "required key is null" can point at it.
                    Some(i) if entry.value.kind == Kind::Null => base_entries[i] = entry,
                    Some(i) => merge(&mut base_entries[i].value, entry.value),
                    None => base_entries.push(entry),
                }
            }
        }
        (_, kind) => {
            base.kind = kind;
            base.origin = over.origin;
        }
    }
}

/// Parses one values document. An empty document is an empty mapping; the root must be a mapping.
pub(crate) fn parse_yaml(name: &str, text: &str) -> Result<Node> {
    let name: Arc<str> = Arc::from(name);
    let origin_of = |span: &Span| Origin::File {
        name: name.clone(),
        line: span.start.line(),
        column: span.start.col() + 1,
    };
    let scan_error = |e: ScanError| Error::Syntax {
        origin: Origin::File {
            name: name.clone(),
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        message: format!("invalid YAML: {}", e.info()),
    };

    let mut builder = Builder::default();
    let mut documents = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(scan_error)?;
        let origin = origin_of(&span);
        match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(Error::Syntax {
                        origin,
                        message: "a values file holds one YAML document; found a second `---`"
                            .to_owned(),
                    });
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain;
                let kind = match tag.as_deref() {
                    Some(tag) if tag.is_yaml_core_schema_tag("str") => Kind::Scalar {
                        text: value.into_owned(),
                        plain: false,
                    },
                    Some(tag) if tag.is_yaml_core_schema_tag("null") => Kind::Null,
                    Some(tag)
                        if ["int", "float", "bool"]
                            .iter()
                            .any(|s| tag.is_yaml_core_schema_tag(s)) =>
                    {
                        Kind::Scalar {
                            text: value.into_owned(),
                            plain: true,
                        }
                    }
                    Some(tag) => {
                        return Err(Error::Syntax {
                            origin,
                            message: format!(
                                "unsupported tag `{}{}`: values files use plain YAML",
                                tag.original_handle(),
                                tag.suffix()
                            ),
                        });
                    }
                    None if plain && is_null(&value) => Kind::Null,
                    None => Kind::Scalar {
                        text: value.into_owned(),
                        plain,
                    },
                };
                builder.push(Node { kind, origin }, anchor)?;
            }
            Event::SequenceStart(_, anchor, _) => builder.stack.push(Frame::Seq {
                items: Vec::new(),
                origin,
                anchor,
            }),
            Event::MappingStart(_, anchor, _) => builder.stack.push(Frame::Map {
                entries: Vec::new(),
                key: None,
                merges: Vec::new(),
                origin,
                anchor,
            }),
            Event::SequenceEnd | Event::MappingEnd => builder.close()?,
            Event::Alias(id) => {
                let node = builder.anchors.get(&id).cloned().ok_or(Error::Syntax {
                    origin: origin.clone(),
                    message: "alias to an unknown anchor".to_owned(),
                })?;
                builder.push(node, 0)?;
            }
            _ => {}
        }
    }
    let root = builder.root.unwrap_or_else(|| {
        Node::empty_map(Origin::File {
            name: name.clone(),
            line: 1,
            column: 1,
        })
    });
    match root.kind {
        Kind::Map(_) => Ok(root),
        Kind::Null => Ok(Node::empty_map(root.origin)),
        _ => Err(Error::Syntax {
            message: format!(
                "a values file is a mapping of keys (like `images:`), found {}",
                root.describe()
            ),
            origin: root.origin,
        }),
    }
}

fn is_null(plain: &str) -> bool {
    matches!(plain, "" | "~" | "null" | "Null" | "NULL")
}

enum Frame {
    Seq {
        items: Vec<Node>,
        origin: Origin,
        anchor: usize,
    },
    Map {
        entries: Vec<Entry>,
        /// A key waiting for its value.
        key: Option<PendingKey>,
        /// Sources of `<<` merge keys, applied when the mapping closes.
        merges: Vec<Node>,
        origin: Origin,
        anchor: usize,
    },
}

struct PendingKey {
    name: String,
    origin: Origin,
    /// A plain `<<`: a YAML merge key rather than a key of that name.
    merge: bool,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) -> Result<()> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None => {
                    let Kind::Scalar { text, plain } = node.kind else {
                        if let Kind::Null = node.kind {
                            return Err(Error::Syntax {
                                origin: node.origin,
                                message: "a mapping key is empty".to_owned(),
                            });
                        }
                        return Err(Error::Syntax {
                            origin: node.origin,
                            message: "a mapping key must be a plain name, not a collection"
                                .to_owned(),
                        });
                    };
                    *key = Some(PendingKey {
                        merge: plain && text == "<<",
                        name: text,
                        origin: node.origin,
                    });
                }
                Some(PendingKey { merge: true, .. }) => match node.kind {
                    Kind::Map(_) => merges.push(node),
                    Kind::Seq(items) => merges.extend(items),
                    _ => {
                        return Err(Error::Syntax {
                            origin: node.origin,
                            message: "`<<` merges a mapping or a list of mappings".to_owned(),
                        });
                    }
                },
                Some(PendingKey {
                    name,
                    origin: key_origin,
                    ..
                }) => {
                    if let Some(first) = entries.iter().find(|e| e.key == name) {
                        return Err(Error::Syntax {
                            message: format!(
                                "duplicate key `{name}` (first given at {})",
                                first.key_origin
                            ),
                            origin: key_origin,
                        });
                    }
                    entries.push(Entry {
                        key: name,
                        key_origin,
                        value: node,
                    });
                }
            },
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let (node, anchor) = match self.stack.pop() {
            Some(Frame::Seq {
                items,
                origin,
                anchor,
            }) => (
                Node {
                    kind: Kind::Seq(items),
                    origin,
                },
                anchor,
            ),
            Some(Frame::Map {
                mut entries,
                merges,
                origin,
                anchor,
                ..
            }) => {
                // Explicit keys win over merged ones; earlier merge sources win over later ones.
                for source in merges {
                    let Kind::Map(merged) = source.kind else {
                        return Err(Error::Syntax {
                            origin: source.origin,
                            message: "`<<` merges a mapping or a list of mappings".to_owned(),
                        });
                    };
                    for entry in merged {
                        if !entries.iter().any(|e| e.key == entry.key) {
                            entries.push(entry);
                        }
                    }
                }
                (
                    Node {
                        kind: Kind::Map(entries),
                        origin,
                    },
                    anchor,
                )
            }
            None => return Ok(()),
        };
        self.push(node, anchor)
    }
}

/// Parses one `--set` argument: `a.b=c`, several separated by commas (`a=1,b=2`), lists as `a={x,y}`,
/// `null` to delete a key (its default applies again), `\.` and `\,` for literal dots and commas.
pub(crate) fn parse_set(arg: &str) -> Result<Node> {
    let origin = Origin::Set {
        arg: Arc::from(arg),
    };
    let err = |message: String| Error::Set {
        arg: arg.to_owned(),
        message,
    };
    let mut root = Node::empty_map(origin.clone());
    for assignment in split_unescaped(arg, ',', true) {
        let Some((key, value)) = split_once_unescaped(&assignment, '=') else {
            return Err(err(format!(
                "`{assignment}` is not KEY=VALUE (for example images.api.tag=1.2.3)"
            )));
        };
        let segments = split_unescaped(key, '.', false);
        if segments.iter().any(|s| s.trim().is_empty()) {
            return Err(err(format!(
                "`{key}` is not a key path like images.api.tag (empty segment)"
            )));
        }
        if let Some(bad) = segments.iter().find(|s| s.contains('[')) {
            return Err(err(format!(
                "`{bad}`: list indexes are not supported by --set; set the whole list as \
                 key={{a,b}} or use a values file"
            )));
        }
        let value = set_value(value, &origin);
        let mut node = value;
        for segment in segments.iter().rev() {
            node = Node {
                kind: Kind::Map(vec![Entry {
                    key: unescape(segment),
                    key_origin: origin.clone(),
                    value: node,
                }]),
                origin: origin.clone(),
            };
        }
        merge(&mut root, node);
    }
    Ok(root)
}

fn set_value(raw: &str, origin: &Origin) -> Node {
    let kind = if raw == "null" {
        Kind::Null
    } else if let Some(inner) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        let items = if inner.is_empty() {
            Vec::new()
        } else {
            split_unescaped(inner, ';', false)
                .into_iter()
                .flat_map(|part| split_unescaped(&part, ',', false))
                .map(|item| Node {
                    kind: Kind::Scalar {
                        text: unescape(&item),
                        plain: true,
                    },
                    origin: origin.clone(),
                })
                .collect()
        };
        Kind::Seq(items)
    } else {
        Kind::Scalar {
            text: unescape(raw),
            // An empty value is an empty string, not null (as with Helm).
            plain: !raw.is_empty(),
        }
    };
    Node {
        kind,
        origin: origin.clone(),
    }
}

/// Splits on `sep` where not escaped by a backslash; with `respect_braces`, not inside `{…}` either.
/// Escapes are kept (removed later by [`unescape`]) so a second split still sees them.
fn split_unescaped(s: &str, sep: char, respect_braces: bool) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '{' if respect_braces => {
                depth += 1;
                current.push(c);
            }
            '}' if respect_braces => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            c if c == sep && depth == 0 => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

fn split_once_unescaped(s: &str, sep: char) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => return Some((&s[..i], &s[i + c.len_utf8()..])),
            _ => {}
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.kind {
            Kind::Scalar { text, .. } => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn plain_scalars_keep_their_spelling_and_origin() {
        let tree = parse_yaml("v.yaml", "images:\n  api:\n    tag: 1.10\n").unwrap();
        let tag = tree.lookup(&["images", "api", "tag"]).unwrap();
        assert_eq!(scalar(tag), "1.10");
        assert_eq!(tag.origin.to_string(), "v.yaml:3:10");
    }

    #[test]
    fn syntax_errors_and_duplicates_name_the_line() {
        let err = parse_yaml("v.yaml", "a: [1, 2\n").unwrap_err();
        assert!(err.to_string().starts_with("v.yaml:"), "{err}");
        let err = parse_yaml("v.yaml", "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml:3:1: duplicate key `a` (first given at v.yaml:1:1)"
        );
        let err = parse_yaml("v.yaml", "- a\n").unwrap_err();
        assert!(err.to_string().contains("mapping of keys"), "{err}");
        let err = parse_yaml("v.yaml", "a: 1\n---\nb: 2\n").unwrap_err();
        assert!(err.to_string().contains("one YAML document"), "{err}");
    }

    #[test]
    fn anchors_and_merge_keys_resolve() {
        let tree = parse_yaml(
            "v.yaml",
            "base: &b {pullPolicy: Never, tag: x}\nimg:\n  <<: *b\n  tag: y\n",
        )
        .unwrap();
        assert_eq!(scalar(tree.lookup(&["img", "tag"]).unwrap()), "y");
        assert_eq!(
            scalar(tree.lookup(&["img", "pullPolicy"]).unwrap()),
            "Never"
        );
    }

    #[test]
    fn empty_documents_are_empty_mappings() {
        for text in ["", "# only a comment\n", "---\n", "~\n"] {
            let tree = parse_yaml("v.yaml", text).unwrap();
            assert_eq!(tree.kind, Kind::Map(Vec::new()), "{text:?}");
        }
    }

    #[test]
    fn merge_replaces_scalars_merges_maps_and_null_deletes() {
        let mut base = parse_yaml("a", "x: {y: 1, z: 2}\nl: [1, 2]\nkeep: k\n").unwrap();
        let over = parse_yaml("b", "x: {y: 3, z: null}\nl: [9]\n").unwrap();
        merge(&mut base, over);
        assert_eq!(scalar(base.lookup(&["x", "y"]).unwrap()), "3");
        assert_eq!(base.lookup(&["x", "z"]).unwrap().kind, Kind::Null);
        assert_eq!(
            base.lookup(&["x", "y"]).unwrap().origin.to_string(),
            "b:1:8"
        );
        assert!(matches!(&base.lookup(&["l"]).unwrap().kind, Kind::Seq(v) if v.len() == 1));
        assert_eq!(scalar(base.lookup(&["keep"]).unwrap()), "k");
    }

    #[test]
    fn set_syntax() {
        let tree = parse_set(r"a.b=1,c={x,y},d\.e=f\,g,n=null,empty=").unwrap();
        assert_eq!(scalar(tree.lookup(&["a", "b"]).unwrap()), "1");
        assert!(matches!(&tree.lookup(&["c"]).unwrap().kind, Kind::Seq(v) if v.len() == 2));
        assert_eq!(scalar(tree.lookup(&["d.e"]).unwrap()), "f,g");
        assert_eq!(tree.lookup(&["n"]).unwrap().kind, Kind::Null);
        assert_eq!(
            tree.lookup(&["empty"]).unwrap().kind,
            Kind::Scalar {
                text: String::new(),
                plain: false
            }
        );
        for bad in ["images.api.tag", "a..b=1", "=1", "a[0]=1"] {
            let err = parse_set(bad).unwrap_err();
            assert!(matches!(err, Error::Set { .. }), "{bad}: {err}");
        }
    }
}
