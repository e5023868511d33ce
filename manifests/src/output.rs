//! Writing rendered objects: multi-document YAML or a JSON `v1 List`, both `kubectl apply -f`-able.
//!
//! Invariants: the same objects always give the same bytes (objects come sorted, maps are ordered);
//! a string that a YAML 1.1 reader (kubectl's) could take for a boolean, number or null (`yes`, `on`,
//! `1.0`, `0755`, `~`) is quoted, so it stays a string.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::render::Object;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Yaml,
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

/// All objects in one stream.
pub fn to_string(objects: &[Object], format: Format) -> Result<String> {
    match format {
        Format::Yaml => to_yaml(objects),
        Format::Json => to_json(objects),
    }
}

/// One object alone (for one file per object).
pub fn object_to_string(object: &Object, format: Format) -> Result<String> {
    to_string(std::slice::from_ref(object), format)
}

/// Multi-document YAML, `---` between documents.
pub fn to_yaml(objects: &[Object]) -> Result<String> {
    // No folded block scalars: a long value (a base64 Secret, a URL list) stays on one line.
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_multiple_with_options(objects, options)
        .map_err(|e| Error::Output(e.to_string()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    api_version: &'static str,
    kind: &'static str,
    items: &'a [Object],
}

/// A pretty-printed `v1 List` (a single object is written as itself).
pub fn to_json(objects: &[Object]) -> Result<String> {
    let mut text = match objects {
        [one] => serde_json::to_string_pretty(one),
        _ => serde_json::to_string_pretty(&List {
            api_version: "v1",
            kind: "List",
            items: objects,
        }),
    }
    .map_err(|e| Error::Output(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// File name for the `index`-th object: `NN-kind-namespace-name.ext`, so that a directory applied in
/// name order is applied in render order.
pub fn file_name(index: usize, object: &Object, format: Format) -> String {
    let kind = object.kind().to_ascii_lowercase();
    let name = match object.namespace() {
        Some(namespace) => format!("{kind}-{namespace}-{}", object.name()),
        None => format!("{kind}-{}", object.name()),
    };
    format!("{index:03}-{name}.{}", format.extension())
}
