//! The report's chart: one row per figure that has a raw limit, two bars (the figure and its raw
//! limit) scaled to the larger of the two, so figures of different units share one picture. Plain
//! SVG written by hand: no plotting dependency for a dozen rectangles.

use std::fmt::Write as _;

/// One row of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub raw_label: String,
    pub raw: f64,
    pub unit: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The SVG document for `bars`.
pub fn svg(title: &str, bars: &[Bar]) -> String {
    const WIDTH: f64 = 900.0;
    const LABEL: f64 = 330.0;
    const BAR_MAX: f64 = WIDTH - LABEL - 150.0;
    const ROW: f64 = 52.0;
    let height = 50.0 + ROW * bars.len() as f64 + 30.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="24" font-size="16" font-weight="bold">{}</text>"##,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LABEL}" y="34" width="12" height="10" fill="#2b6cb0"/><text x="{}" y="43">measured</text><rect x="{}" y="34" width="12" height="10" fill="#a0aec0"/><text x="{}" y="43">raw limit, same run</text>"##,
        LABEL + 16.0,
        LABEL + 90.0,
        LABEL + 106.0
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = 50.0 + ROW * i as f64;
        let scale = bar.value.max(bar.raw).max(f64::MIN_POSITIVE);
        let w = |v: f64| (v / scale * BAR_MAX).max(1.0);
        let _ = writeln!(
            out,
            r##"<text x="10" y="{}">{}</text><text x="10" y="{}" fill="#4a5568">vs {}</text>"##,
            y + 16.0,
            escape(&bar.label),
            y + 36.0,
            escape(&bar.raw_label)
        );
        let _ = writeln!(
            out,
            r##"<rect x="{LABEL}" y="{}" width="{:.1}" height="18" fill="#2b6cb0"/><text x="{:.1}" y="{}">{} {}</text>"##,
            y + 3.0,
            w(bar.value),
            LABEL + w(bar.value) + 6.0,
            y + 16.0,
            number(bar.value),
            escape(&bar.unit)
        );
        let _ = writeln!(
            out,
            r##"<rect x="{LABEL}" y="{}" width="{:.1}" height="18" fill="#a0aec0"/><text x="{:.1}" y="{}">{} {}</text>"##,
            y + 23.0,
            w(bar.raw),
            LABEL + w(bar.raw) + 6.0,
            y + 36.0,
            number(bar.raw),
            escape(&bar.unit)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_larger_of_each_pair_and_text_is_escaped() {
        let doc = svg(
            "Benchmarks",
            &[Bar {
                label: "intake <c=64>".into(),
                value: 50.0,
                raw_label: "redis-benchmark & co".into(),
                raw: 100.0,
                unit: "votes/s".into(),
            }],
        );
        assert!(doc.starts_with("<svg"));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert!(doc.contains("intake &lt;c=64&gt;"));
        assert!(doc.contains("redis-benchmark &amp; co"));
        // Half of the maximum bar width for the measured value, all of it for the raw one.
        assert!(doc.contains(r#"width="210.0""#), "{doc}");
        assert!(doc.contains(r#"width="420.0""#), "{doc}");
    }
}
