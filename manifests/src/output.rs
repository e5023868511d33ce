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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    /// Strings a YAML 1.1 reader (kubectl's) would read as a bool, number or null stay strings.
    #[test]
    fn ambiguous_strings_are_quoted() {
        let tricky = [
            "yes", "no", "on", "off", "y", "n", "Y", "true", "False", "1.0", "0755", "1e3", "0x1F",
            "~", "null", "12:30", ".inf", "",
        ];
        let labels: BTreeMap<String, String> = tricky
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("k{i:02}"), (*v).to_owned()))
            .collect();
        let object = Object::Namespace(Namespace {
            metadata: ObjectMeta {
                name: Some("0755".to_owned()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        });
        let yaml = to_yaml(std::slice::from_ref(&object)).unwrap();
        for (i, value) in tricky.iter().enumerate() {
            let line = yaml
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("k{i:02}:")))
                .unwrap();
            let shown = line.split_once(": ").map_or("", |(_, v)| v);
            assert!(
                shown.starts_with(['"', '\'']),
                "`{value}` is written unquoted: {line}"
            );
        }
        assert!(
            yaml.contains("name: \"0755\"") || yaml.contains("name: '0755'"),
            "{yaml}"
        );
        // And a YAML reader gets the same strings back.
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, serde_json::to_value(&object).unwrap());
    }

    #[test]
    fn json_is_a_list_and_files_sort_in_apply_order() {
        let ns = |name: &str| {
            Object::Namespace(Namespace {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            })
        };
        let objects = [ns("a"), ns("b")];
        let list: serde_json::Value = serde_json::from_str(&to_json(&objects).unwrap()).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][1]["metadata"]["name"], "b");
        let one: serde_json::Value =
            serde_json::from_str(&to_json(&objects[..1]).unwrap()).unwrap();
        assert_eq!(one["kind"], "Namespace");
        assert_eq!(
            file_name(7, &objects[0], Format::Yaml),
            "007-namespace-a.yaml"
        );
    }
}
