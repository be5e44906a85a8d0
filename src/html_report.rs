//! `--report FILE.html`: one self-contained page (no scripts, no network)
//! with every verdict, and for each counterexample the difference, the
//! model's reasons (`why:`), a picture, and the input and both answers.
//!
//! The pictures are the operations' own (`picture` of each entry of
//! `gmem_checker::ops::OPERATIONS`, e.g. the invalidation's file pages
//! with the zaps the C skipped outlined, bind's file with the binding past
//! `i_size`, the RMP region before and after for the hooks); this module
//! only lays them out.

use std::path::Path;

pub use gmem_checker::ops::picture::{C_BLUE, MISSING_RED, MODEL_GREEN, esc};
use gmem_checker::ops::{Counterexample, OPERATIONS};
use gmem_checker::runner::{Item, Report, Verdict};
use serde_json::Value;

use crate::failure::Failure;

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
        if i.other_profile > 0 {
            format!("{} (+{} of another profile)", i.model_only, i.other_profile)
        } else {
            i.model_only.to_string()
        },
        i.seconds,
        esc(&i.function)
    );
    if let Some(e) = &i.error {
        s.push_str(&format!(
            "<tr><td colspan=7><pre>{}</pre></td></tr>\n",
            esc(e)
        ));
    }
    if let Some(n) = &i.not_checked {
        s.push_str(&format!(
            "<tr><td colspan=7>not checked: {}</td></tr>\n",
            esc(n)
        ));
    }
    s
}

fn counterexample_html(i: &Item, c: &Counterexample) -> String {
    let picture = OPERATIONS
        .iter()
        .find(|op| op.name == i.operation)
        .and_then(|op| (op.picture)(c))
        .unwrap_or_default();
    let model_why: String = c
        .model_why
        .iter()
        .map(|w| format!("<li>{}</li>", esc(w)))
        .collect();
    let pretty = |v: &Value| esc(&serde_json::to_string_pretty(v).unwrap_or_default());
    format!(
        "<section><h3>{} — {} ({})</h3><p class=why>{}</p><div class=model-why><h4>why the model answers so</h4><ul>{model_why}</ul></div><figure>{picture}</figure>\
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
    let verdict = match r.verdict {
        Verdict::Conforms => "conforms",
        Verdict::Diverges => "diverges",
        Verdict::Error | Verdict::Missing => "not proven",
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
