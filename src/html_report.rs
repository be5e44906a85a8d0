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

/// A verdict's colour in the history grid: green conforms, red diverges,
/// grey missing, orange error.
fn verdict_colour(v: &str) -> &'static str {
    match v {
        "conforms" => "#b7e4b7",
        "diverges" => "#f4a6a0",
        "error" => "#f6c88a",
        _ => "#dddddd",
    }
}

/// `history --report`: one row per operation, one cell per version (the
/// starting one first), coloured by verdict; a cell where the verdict
/// changed from the version's parent is outlined and labelled with the
/// old verdict, and listed below with its counterexample or error.
pub fn render_history(h: &gmem_checker::history::History) -> String {
    let mut head = String::from("<tr><th>operation</th>");
    for p in &h.points {
        head.push_str(&format!(
            "<th title=\"{}\">{}</th>",
            esc(&p.subject),
            esc(&p.label)
        ));
    }
    head.push_str("</tr>\n");
    let mut rows = String::new();
    for op in OPERATIONS {
        let mut row = format!("<tr><th>{}</th>", esc(op.name));
        for (at, p) in h.points.iter().enumerate() {
            let v = p
                .verdicts
                .get(op.name)
                .and_then(Value::as_str)
                .unwrap_or("");
            let change = h
                .changes
                .iter()
                .find(|c| c.at == at && c.operation == op.name);
            let (class, label) = match change {
                Some(c) => (
                    " class=change",
                    format!(
                        "{} → {v}",
                        serde_json::to_value(c.from)
                            .unwrap_or_default()
                            .as_str()
                            .unwrap_or("")
                    ),
                ),
                None => ("", String::new()),
            };
            row.push_str(&format!(
                "<td{class} data-verdict=\"{v}\" style=\"background:{}\" title=\"{} {}: {v}\">{}</td>",
                verdict_colour(v),
                esc(&p.label),
                esc(op.name),
                esc(&label)
            ));
        }
        rows.push_str(&row);
        rows.push_str("</tr>\n");
    }
    let mut changes = String::new();
    for c in &h.changes {
        let mut body = String::new();
        if let Some(e) = c.item["error"].as_str() {
            body.push_str(&format!("<pre>{}</pre>", esc(e)));
        }
        let cx = &c.item["counterexample"];
        if cx.is_object() {
            let pretty = |v: &Value| esc(&serde_json::to_string_pretty(v).unwrap_or_default());
            body.push_str(&format!(
                "<p class=why>{}</p><div class=cols><div><h4>input</h4><pre>{}</pre></div><div><h4>model</h4><pre>{}</pre></div><div><h4>C</h4><pre>{}</pre></div></div>",
                esc(cx["why"].as_str().unwrap_or("")),
                pretty(&cx["input"]),
                pretty(&cx["model"]),
                pretty(&cx["c"])
            ));
        }
        let word = |v: Verdict| {
            serde_json::to_value(v)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        changes.push_str(&format!(
            "<section><h3>{}: {} → {} at {} {}</h3>{body}</section>\n",
            esc(c.operation),
            word(c.from),
            word(c.to),
            esc(&c.label),
            esc(&c.subject)
        ));
    }
    if let Some(s) = &h.stopped {
        changes.push_str(&format!("<p class=why>stopped: {}</p>\n", esc(s)));
    }
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; font-size: 12px; }}
td {{ min-width: 1.2em; }} td.change {{ outline: 3px solid #333; outline-offset: -3px; font-weight: bold; }}
pre {{ font-size: 11px; }} .cols {{ display: flex; gap: 1em; }} .why {{ font-weight: bold; }}
section {{ border-top: 2px solid #999; margin-top: 1.5em; }}
</style></head><body>
<h1>{t}</h1>
<p>{n} versions, {r} distinct trees reviewed, {cached} verdicts from the cache, C compiled {compiles} times.</p>
<table>{head}{rows}</table>
{changes}
</body></html>
"##,
        t = esc(&format!("gmemforge history: {}", h.what)),
        n = h.points.len(),
        r = h.reviewed,
        cached = h.cached,
        compiles = h.compiles,
    )
}

/// Writes the history page atomically (temporary name, then rename).
pub fn write_history(path: &Path, h: &gmem_checker::history::History) -> Result<(), Failure> {
    let tmp = path.with_extension(format!("html.tmp{}", std::process::id()));
    std::fs::write(&tmp, render_history(h))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::io(format!("--report {}: cannot write it: {e}", path.display()))
        })
}
