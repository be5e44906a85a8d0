//! What every operation's counterexample picture shares: colours, an
//! axis, SVG pieces, and the 2M region of RMP entries that `prepare`,
//! `gmem-invalidate` and `punch-hole` draw (before, after in the model,
//! after in the C).
//!
//! Each operation draws its own picture (`picture` in its module, in the
//! [`super::Operation`] registry); the CLI's `--report` only lays them out.
//! Every element a reader looks for carries a `class` (`eof`, `new-binding`,
//! `differs`, ...), so a test can find it in the rendered page.

use std::fmt::Write as _;

use serde_json::Value;

/// The model's answer.
pub const MODEL_GREEN: &str = "#2ca02c";
/// The C's answer.
pub const C_BLUE: &str = "#1f77b4";
/// What the C missed or got wrong, and deciding bits.
pub const MISSING_RED: &str = "#d62728";
/// The case's own range (the invalidated pfns, the requested range).
pub const RANGE_ORANGE: &str = "#e6550d";

/// HTML/SVG text escaping.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JSON number as u64 (0 when absent).
pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// `<svg>` with the picture's class (`picture picture-<op>`).
pub fn open(op: &str, width: u32, height: u32) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="picture picture-{op}" width="{width}" height="{height}" font-family="monospace" font-size="12">"##
    )
}

/// A labelled rectangle.
#[allow(clippy::too_many_arguments)] // geometry, style and label of one shape
pub fn rect(s: &mut String, class: &str, x: f64, y: f64, w: f64, h: f64, style: &str, label: &str) {
    let _ = write!(
        s,
        r##"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" {style}/>"##,
        w.max(2.0)
    );
    if !label.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}">{}</text>"##,
            x + 3.0,
            y + h / 2.0 + 4.0,
            esc(label)
        );
    }
}

/// A line of text.
pub fn text(s: &mut String, x: f64, y: f64, fill: &str, t: &str) {
    let _ = write!(
        s,
        r##"<text x="{x:.1}" y="{y:.1}" fill="{fill}">{}</text>"##,
        esc(t)
    );
}

/// A linear axis from `lo` to `hi` drawn over `[x0, x0 + w]` pixels.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    /// First value.
    pub lo: u64,
    /// Last value.
    pub hi: u64,
    /// Left edge in pixels.
    pub x0: f64,
    /// Width in pixels.
    pub w: f64,
}

impl Axis {
    /// The pixel of value `v` (values past the ends are clamped just
    /// outside, so a range running off is seen to).
    pub fn x(&self, v: u64) -> f64 {
        let span = (self.hi.saturating_sub(self.lo)).max(1) as f64;
        self.x0 + (v.saturating_sub(self.lo) as f64 / span).min(1.02) * self.w
    }

    /// Nine tick labels at `y`, each value shown by `fmt`.
    pub fn ticks(&self, s: &mut String, y: f64, fmt: impl Fn(u64) -> String) {
        self.ticks_by(s, y, 1, fmt);
    }

    /// Tick labels at multiples of `unit` (a page, a 2M frame), about
    /// nine of them.
    pub fn ticks_by(&self, s: &mut String, y: f64, unit: u64, fmt: impl Fn(u64) -> String) {
        let unit = unit.max(1);
        let step = (self.hi.saturating_sub(self.lo) / 8).div_ceil(unit).max(1) * unit;
        let first = self.lo.div_ceil(unit) * unit;
        let mut last = None;
        for t in 0..=9u64 {
            let v = first.saturating_add(step.saturating_mul(t));
            if v > self.hi || last == Some(v) {
                break;
            }
            last = Some(v);
            let _ = write!(
                s,
                r##"<text class="tick" x="{:.1}" y="{y:.1}" text-anchor="middle" fill="#666">{}</text>"##,
                self.x(v),
                esc(&fmt(v))
            );
        }
    }
}

/// One RMP entry's state as a picture shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cell {
    /// Assigned (private).
    pub assigned: bool,
    /// Part of a 2M entry.
    pub huge: bool,
    /// Validated.
    pub validated: bool,
    /// Immutable.
    pub immutable: bool,
}

/// The cells of the 2M region at `head` from a JSON list of runs (the
/// `RmpRun` form: pfn, npages, size, validated, immutable).
pub fn region_cells(runs: &Value, head: u64) -> Vec<Cell> {
    let mut cells = vec![Cell::default(); 512];
    for r in runs.as_array().into_iter().flatten() {
        let (pfn, n) = (u(&r["pfn"]), r["npages"].as_u64().unwrap_or(1));
        let huge = r["size"].as_str() == Some("2M");
        for p in pfn.max(head)..pfn.saturating_add(n).min(head + 512) {
            cells[(p - head) as usize] = Cell {
                assigned: true,
                huge,
                validated: r["validated"].as_bool().unwrap_or(false),
                immutable: r["immutable"].as_bool().unwrap_or(false),
            };
        }
    }
    cells
}

fn cell_fill(c: Cell) -> &'static str {
    match c {
        Cell {
            assigned: false, ..
        } => "#f4f4f4",
        Cell {
            immutable: true, ..
        } => "#756bb1",
        Cell { huge: true, .. } => "#08519c",
        _ => "#6baed6",
    }
}

/// The 2M region at `head`: before, after in the model, after in the C,
/// 512 cells each (32 × 16, pfn order left to right, top to bottom).
/// `range` (pfns) is outlined in the "before" grid; cells where the C's
/// table differs from the model's are outlined red in the C's grid.
pub fn rmp_region_svg(
    op: &str,
    head: u64,
    before: &Value,
    model: &Value,
    c: Option<&Value>,
    range: (u64, u64),
    caption: &str,
) -> String {
    let grids: [(&str, Vec<Cell>); 3] = [
        ("before", region_cells(before, head)),
        ("after, model", region_cells(model, head)),
        (
            "after, C",
            c.map(|c| region_cells(c, head)).unwrap_or_default(),
        ),
    ];
    let mut s = open(op, 900, 250);
    text(
        &mut s,
        10.0,
        16.0,
        "#222",
        &format!(
            "RMP entries of the 2M region pfns [{head:#x}, {:#x}); {caption}",
            head + 512
        ),
    );
    let model_cells = &grids[1].1;
    for (g, (title, cells)) in grids.iter().enumerate() {
        let gx = 10.0 + g as f64 * 295.0;
        let _ = write!(
            s,
            r##"<g class="rmp-grid rmp-{}">"##,
            ["before", "model", "c"][g]
        );
        text(&mut s, gx, 38.0, "#222", title);
        if cells.is_empty() {
            text(
                &mut s,
                gx,
                90.0,
                MISSING_RED,
                "(the C's table was not recorded)",
            );
            s.push_str("</g>");
            continue;
        }
        for (k, cell) in cells.iter().enumerate() {
            let (x, y) = (gx + (k % 32) as f64 * 8.0, 46.0 + (k / 32) as f64 * 8.0);
            let pfn = head + k as u64;
            let (class, stroke) = if g == 2 && *cell != model_cells[k] {
                (
                    "cell differs",
                    format!(r##"stroke="{MISSING_RED}" stroke-width="2""##),
                )
            } else if g == 0 && pfn >= range.0 && pfn < range.1 {
                (
                    "cell in-range",
                    format!(r##"stroke="{RANGE_ORANGE}" stroke-width="1.5""##),
                )
            } else {
                ("cell", String::new())
            };
            let _ = write!(
                s,
                r##"<rect class="{class}" x="{x:.0}" y="{y:.0}" width="7" height="7" fill="{}" {stroke}><title>pfn {pfn:#x}</title></rect>"##,
                cell_fill(*cell)
            );
            if cell.validated {
                let _ = write!(
                    s,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="1.5" fill="#fff"/>"##,
                    x + 3.5,
                    y + 3.5
                );
            }
        }
        s.push_str("</g>");
    }
    let legend = [
        ("#f4f4f4", "shared"),
        ("#6baed6", "assigned 4K"),
        ("#08519c", "2M entry"),
        ("#756bb1", "immutable"),
    ];
    for (i, (fill, name)) in legend.iter().enumerate() {
        let x = 10.0 + i as f64 * 130.0;
        let _ = write!(
            s,
            r##"<rect x="{x:.0}" y="190" width="10" height="10" fill="{fill}" stroke="#999"/>"##
        );
        text(&mut s, x + 14.0, 199.0, "#222", name);
    }
    text(
        &mut s,
        530.0,
        199.0,
        "#222",
        "white dot: validated; orange: the call's pfns",
    );
    let differing = grids[2]
        .1
        .iter()
        .zip(model_cells)
        .filter(|(a, b)| a != b)
        .count();
    text(
        &mut s,
        10.0,
        225.0,
        if differing > 0 { MISSING_RED } else { "#222" },
        &if grids[2].1.is_empty() {
            String::new()
        } else if differing > 0 {
            format!(
                "{differing} {} of the C's table differ from the model's (outlined red)",
                if differing == 1 { "entry" } else { "entries" }
            )
        } else {
            "the tables agree on this region; the difference is in the operations (see why)".into()
        },
    );
    s.push_str("</svg>");
    s
}
