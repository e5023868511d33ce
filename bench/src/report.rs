//! The Markdown report: one row per figure, with its raw limit and whether the goal was met.

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// What the figure is compared with.
    pub raw_name: String,
    /// The raw tool's figure in the same run, when there is one.
    pub raw_value: Option<f64>,
    /// With a raw value: the least acceptable ratio; without: the least acceptable value.
    pub goal: Option<f64>,
    pub note: String,
}

impl Figure {
    fn verdict(&self) -> String {
        match (self.raw_value, self.goal) {
            (Some(raw), Some(goal)) => {
                let ratio = self.value / raw;
                format!(
                    "{ratio:.2}× (goal ≥ {goal}×: {})",
                    if ratio >= goal { "met" } else { "not met" }
                )
            }
            (Some(raw), None) => format!("{:.2}×", self.value / raw),
            (None, Some(goal)) => format!(
                "goal ≥ {goal:.0}: {}",
                if self.value >= goal { "met" } else { "not met" }
            ),
            _ => String::new(),
        }
    }
}

/// A figure as the table shows it: whole numbers from 100 up, one decimal below, two below 10.
fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// All figures of one run.
#[derive(Debug, Clone)]
pub struct Report {
    machine: String,
    figures: Vec<Figure>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(machine: String) -> Self {
        Self {
            machine,
            figures: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn push(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    /// A line under the table (something that could not be measured, and why).
    pub fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    /// The chart of every figure that has a raw limit.
    pub fn svg(&self) -> String {
        let bars: Vec<crate::chart::Bar> = self
            .figures
            .iter()
            .filter_map(|f| {
                Some(crate::chart::Bar {
                    label: f.name.clone(),
                    value: f.value,
                    raw_label: f.raw_name.clone(),
                    raw: f.raw_value?,
                    unit: f.unit.to_owned(),
                })
            })
            .collect();
        crate::chart::svg(
            "Each figure next to its raw limit, measured in the same run",
            &bars,
        )
    }

    /// The report; `chart` is the file name of the SVG written beside it, if any.
    pub fn markdown(&self, chart: Option<&str>) -> String {
        let mut out = String::from(
            "# Benchmarks\n\nWritten by `make bench` (bench/): every figure is measured next to its raw \
             limit in the same run, on the same servers, because the machine is shared and noisy. \
             Nothing here is a timed test; a goal that is not met is reported, not hidden.\n\n",
        );
        out.push_str(&format!("Machine: {}\n\n", self.machine));
        if let Some(chart) = chart {
            out.push_str(&format!(
                "![Each figure next to its raw limit]({chart})\n\n"
            ));
        }
        out.push_str(
            "| figure | value | compared with | ratio / goal | notes |\n|---|---|---|---|---|\n",
        );
        for f in &self.figures {
            let raw = f.raw_value.map_or(f.raw_name.clone(), |v| {
                format!("{}: {} {}", f.raw_name, number(v), f.unit)
            });
            out.push_str(&format!(
                "| {} | {} {} | {raw} | {} | {} |\n",
                f.name,
                number(f.value),
                f.unit,
                f.verdict(),
                f.note
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("\n{note}\n"));
        }
        out
    }
}
