//! How subcommands print: tables for people, JSON or YAML for scripts.
//!
//! Invariant: stdout carries only the requested output (one document, or one per event when
//! following); progress, notes and errors go to stderr.

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// `-o table|json|yaml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// A table in the style every subcommand uses.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .apply_modifier(comfy_table::modifiers::UTF8_ROUND_CORNERS)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// `value` as pretty JSON or YAML (`Format::Table` is the caller's business and prints JSON here).
pub fn document<T: Serialize>(value: &T, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Yaml => serde_saphyr::to_string(value)
            .map_err(|e| anyhow::anyhow!("failed to encode YAML: {e}"))?,
        Format::Json | Format::Table => serde_json::to_string_pretty(value)? + "\n",
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_carry_the_same_fields() {
        let value = serde_json::json!({"components": [{"name": "api", "pid": 7, "ready": true}]});
        let yaml = document(&value, Format::Yaml).unwrap();
        assert!(yaml.contains("name: api"), "{yaml}");
        let json = document(&value, Format::Json).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            value
        );
    }
}
