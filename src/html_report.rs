//! `--report FILE.html`: one self-contained page (no scripts, no network)
//! with every verdict, and a picture for each counterexample.
//!
//! Invalidation counterexamples are drawn in file-page space: the
//! bindings, the invalidated range, and the zaps the model and the C made,
//! each mapped back from gfns to file pages, one row per side, with the
//! zaps the C skipped outlined. Classification counterexamples show the
//! error code's 64 bits with the deciding bit marked.

use std::fmt::Write as _;
use std::path::Path;

use gmem_checker::ops::Counterexample;
use gmem_checker::runner::{Item, Report, Verdict};
use serde_json::Value;

use crate::failure::Failure;

/// Colours (also what the screenshot test looks for).
pub const MODEL_GREEN: &str = "#2ca02c";
/// The C's zaps.
pub const C_BLUE: &str = "#1f77b4";
/// Zaps the C skipped, and deciding bits.
pub const MISSING_RED: &str = "#d62728";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The file-page picture of an invalidation counterexample.
pub fn invalidation_svg(c: &Counterexample) -> Option<String> {
    let slots = c.input["slots"].as_array()?;
    let (start, end) = (u(&c.input["start"]), u(&c.input["end"]));
    // File pages as (slot id → (base_gfn, pgoff, npages)).
    let binding = |id: u64| {
        slots
            .iter()
            .find(|s| u(&s["id"]) == id)
            .map(|s| (u(&s["base_gfn"]), u(&s["pgoff"]), u(&s["npages"])))
    };
    let to_file = |r: &Value| {
        let (base, pgoff, _) = binding(u(&r["slot"]))?;
        Some((
            u(&r["slot"]),
            u(&r["start"]).wrapping_sub(base).wrapping_add(pgoff),
            u(&r["end"]).wrapping_sub(base).wrapping_add(pgoff),
        ))
    };
    let model: Vec<(u64, u64, u64)> = c.model["ranges"]
        .as_array()
        .map(|a| a.iter().filter_map(to_file).collect())
        .unwrap_or_default();
    let cside: Vec<(u64, u64, u64)> = c.c["ranges"]
        .as_array()
        .map(|a| a.iter().filter_map(to_file).collect())
        .unwrap_or_default();
    // The axis spans the bindings and the range (a huge end, like the
    // release path's -1ul, is drawn running off the right edge).
    let lo = slots
        .iter()
        .map(|s| u(&s["pgoff"]))
        .chain([start])
        .min()
        .unwrap_or(0);
    let bind_hi = slots
        .iter()
        .map(|s| u(&s["pgoff"]).saturating_add(u(&s["npages"])))
        .max()
        .unwrap_or(start + 1);
    let hi = bind_hi
        .max(start.saturating_add(1))
        .max(if end - lo <= 4 * (bind_hi - lo + 1) {
            end
        } else {
            0
        })
        .saturating_add(1);
    let span = (hi - lo).max(1) as f64;
    let (x0, w) = (150.0, 720.0);
    let x = |p: u64| x0 + (p.saturating_sub(lo) as f64 / span).min(1.02) * w;
    let mut s = String::new();
    let rows = ["bindings", "invalidated", "model zaps", "C zaps"];
    let height = 40 + rows.len() * 44;
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="{height}" font-family="monospace" font-size="12">"##
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 30 + i * 44;
        let _ = write!(
            s,
            r##"<text x="8" y="{}">{r}</text><line x1="{x0}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>"##,
            y + 20,
            y + 32,
            x0 + w,
            y + 32
        );
    }
    // File page ticks.
    let mut last_tick = None;
    for t in 0..=8u64 {
        let p = lo + (hi - lo) * t / 8;
        if last_tick == Some(p) {
            continue;
        }
        last_tick = Some(p);
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="18" text-anchor="middle" fill="#666">{p}</text>"##,
            x(p)
        );
    }
    for sl in slots {
        let (id, pgoff, n) = (u(&sl["id"]), u(&sl["pgoff"]), u(&sl["npages"]));
        let (a, b) = (x(pgoff), x(pgoff.saturating_add(n)));
        let _ = write!(
            s,
            r##"<rect x="{a:.1}" y="34" width="{:.1}" height="28" fill="#eee" stroke="#333"/><text x="{:.1}" y="52">slot {id} (gfn {:#x})</text>"##,
            (b - a).max(2.0),
            a + 4.0,
            u(&sl["base_gfn"])
        );
    }
    let (a, b) = (x(start), x(end.min(hi)));
    let tail = if end > hi { " → -1ul" } else { "" };
    let _ = write!(
        s,
        r##"<rect x="{a:.1}" y="78" width="{:.1}" height="28" fill="#fdd49e" stroke="#e6550d"/><text x="{:.1}" y="96">[{start}, {end}){tail}</text>"##,
        (b - a).max(2.0),
        a + 4.0
    );
    let mut draw = |row: usize, zaps: &[(u64, u64, u64)], colour: &str| {
        let y = 30 + row * 44 + 4;
        for &(slot, zs, ze) in zaps {
            let (a, b) = (x(zs), x(ze));
            let _ = write!(
                s,
                r##"<rect x="{a:.1}" y="{y}" width="{:.1}" height="28" fill="{colour}" fill-opacity="0.85"/><text x="{:.1}" y="{}" fill="#fff">slot {slot}</text>"##,
                (b - a).max(2.0),
                a + 3.0,
                y + 18
            );
        }
    };
    draw(2, &model, MODEL_GREEN);
    draw(3, &cside, C_BLUE);
    // What the model zaps and the C does not: outlined, labelled.
    for &(slot, zs, ze) in &model {
        if !cside
            .iter()
            .any(|&(cs, a, b)| cs == slot && a == zs && b == ze)
        {
            let (a, b) = (x(zs), x(ze));
            let _ = write!(
                s,
                r##"<rect x="{a:.1}" y="166" width="{:.1}" height="28" fill="{MISSING_RED}" fill-opacity="0.25" stroke="{MISSING_RED}" stroke-width="3" stroke-dasharray="6 3"/><text x="{:.1}" y="184" fill="{MISSING_RED}">slot {slot} skipped</text>"##,
                (b - a).max(2.0),
                a + 3.0
            );
        }
    }
    s.push_str("</svg>");
    Some(s)
}

/// The error code's bits, the deciding one marked.
pub fn error_code_svg(c: &Counterexample) -> Option<String> {
    let code = c.input["error_code"].as_u64()?;
    let vm = c.input["vm_type"].as_str().unwrap_or("");
    let model_code = c.model["error_code"].as_u64().unwrap_or(code);
    let c_code = c.c["error_code"].as_u64().unwrap_or(code);
    // The deciding bits: the rule's bit for the VM, and any bit where the
    // error codes the model and the C pass on differ.
    let mut decide: u64 = match vm {
        "snp" => 1 << 34,
        _ => 0,
    };
    decide |= model_code ^ c_code;
    let mut s = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="120" font-family="monospace" font-size="10">"##,
    );
    for bit in (0..64u32).rev() {
        let col = 63 - bit;
        let (xx, y) = (10 + col * 13 + (col / 8) * 4, 30);
        let set = code & (1 << bit) != 0;
        let fill = if set { "#333" } else { "#fff" };
        let (stroke, sw) = if decide & (1 << bit) != 0 {
            (MISSING_RED, 3)
        } else {
            ("#999", 1)
        };
        let _ = write!(
            s,
            r##"<rect x="{xx}" y="{y}" width="11" height="22" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>"##
        );
        if bit % 8 == 0 || decide & (1 << bit) != 0 {
            let colour = if decide & (1 << bit) != 0 {
                MISSING_RED
            } else {
                "#666"
            };
            let _ = write!(
                s,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="{colour}">{bit}</text>"##,
                xx + 5,
                y + 38
            );
        }
    }
    let _ = write!(
        s,
        r##"<text x="10" y="18">error code {code:#x} ({vm}); red: the bit that decides private vs shared, or differs between model and C</text></svg>"##
    );
    Some(s)
}

fn item_html(i: &Item) -> String {
    let verdict = match i.verdict {
        Verdict::Conforms => "conforms",
        Verdict::Diverges => "diverges",
        Verdict::Missing => "missing",
        Verdict::Error => "error",
    };
    let mut s = format!(
        "<tr class=\"{verdict}\"><td>{}</td><td>{}</td><td>{verdict}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.3}s</td><td>{}</td></tr>\n",
        esc(&i.implementation),
        esc(i.operation),
        i.vectors,
        i.model_only,
        i.seconds,
        esc(&i.function)
    );
    if let Some(e) = &i.error {
        s.push_str(&format!(
            "<tr><td colspan=7><pre>{}</pre></td></tr>\n",
            esc(e)
        ));
    }
    s
}

fn counterexample_html(i: &Item, c: &Counterexample) -> String {
    let picture = match i.operation {
        "invalidate" => invalidation_svg(c),
        "classify" => error_code_svg(c),
        _ => None,
    }
    .unwrap_or_default();
    let pretty = |v: &Value| esc(&serde_json::to_string_pretty(v).unwrap_or_default());
    format!(
        "<section><h3>{} — {} ({})</h3><p class=why>{}</p><figure>{picture}</figure>\
         <div class=cols><div><h4>input</h4><pre>{}</pre></div><div><h4>model</h4><pre>{}</pre></div><div><h4>C</h4><pre>{}</pre></div></div></section>\n",
        esc(i.operation),
        esc(&i.function),
        esc(&i.implementation),
        esc(&c.why),
        pretty(&c.input),
        pretty(&c.model),
        pretty(&c.c)
    )
}

/// The whole page.
pub fn render(title: &str, r: &Report) -> String {
    let mut rows = String::new();
    let mut cxs = String::new();
    for i in &r.items {
        rows.push_str(&item_html(i));
        if let Some(c) = &i.counterexample {
            cxs.push_str(&counterexample_html(i, c));
        }
    }
    let verdict = if r.verdict == Verdict::Conforms {
        "conforms"
    } else {
        "diverges"
    };
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
td.n {{ text-align: right; font-family: monospace; }}
tr.diverges td, tr.error td {{ background: #fde0dd; }} tr.missing td {{ background: #f0f0f0; }}
pre {{ font-size: 11px; }} .cols {{ display: flex; gap: 1em; }} .why {{ font-weight: bold; }}
section {{ border-top: 2px solid #999; margin-top: 1.5em; }}
</style></head><body>
<h1>{t}</h1>
<p>Verdict: <b>{verdict}</b> — {v} vectors in {secs:.2}s ({vps:.0} vectors/s).</p>
<table><tr><th>implementation</th><th>operation</th><th>verdict</th><th>vectors</th><th>model-only</th><th>time</th><th>functions</th></tr>
{rows}</table>
{cxs}
</body></html>
"##,
        t = esc(title),
        v = r.vectors,
        secs = r.seconds,
        vps = r.vectors_per_second
    )
}

/// Writes the page atomically (temporary name, then rename).
pub fn write(path: &Path, title: &str, r: &Report) -> Result<(), Failure> {
    let tmp = path.with_extension(format!("html.tmp{}", std::process::id()));
    std::fs::write(&tmp, render(title, r))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::io(format!("--report {}: cannot write it: {e}", path.display()))
        })
}
