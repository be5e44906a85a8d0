//! `gmemforge model <op>`: the reference model as a JSON filter.
//!
//! Reads one JSON document on stdin, answers with one on stdout. Input
//! formats are the model's serde types (documented in README.md); malformed
//! JSON, a negative or out-of-range number or an unknown field is refused
//! with the path of the field at fault.

use std::io::Read;

use gmem_reference::InputError;
use gmem_reference::ops;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::failure::Failure;

/// The operations `gmemforge model` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelOp {
    /// kvm_gmem_invalidate_begin()/_end(): gfn ranges zapped for a file range.
    Invalidate,
    /// The private/shared fault classification chain.
    Classify,
    /// sev_gmem_prepare() and the max mapping level after it.
    Prepare,
    /// sev_gmem_invalidate(): RMP make-shared of freed pfns.
    GmemInvalidate,
    /// KVM_PRE_FAULT_MEMORY.
    PreFault,
    /// Memslot checks and kvm_gmem_bind().
    Bind,
    /// kvm_gmem_fallocate().
    Fallocate,
    /// A scenario of faults, conversions, punch holes and release.
    Lifecycle,
    /// kvm_gmem_punch_hole() on a file with folios: zaps, RMP updates, locks.
    PunchHole,
    /// kvm_gmem_get_pfn(): the fault path, its errnos and the prepare hook's calls.
    GetPfn,
}

impl ModelOp {
    /// Every operation, in a fixed order.
    pub const ALL: [ModelOp; 10] = [
        ModelOp::Invalidate,
        ModelOp::Classify,
        ModelOp::Prepare,
        ModelOp::GmemInvalidate,
        ModelOp::PreFault,
        ModelOp::Bind,
        ModelOp::Fallocate,
        ModelOp::Lifecycle,
        ModelOp::PunchHole,
        ModelOp::GetPfn,
    ];

    /// The name on the command line and of the vector file.
    pub fn name(self) -> &'static str {
        match self {
            ModelOp::Invalidate => "invalidate",
            ModelOp::Classify => "classify",
            ModelOp::Prepare => "prepare",
            ModelOp::GmemInvalidate => "gmem-invalidate",
            ModelOp::PreFault => "pre-fault",
            ModelOp::Bind => "bind",
            ModelOp::Fallocate => "fallocate",
            ModelOp::Lifecycle => "lifecycle",
            ModelOp::PunchHole => "punch-hole",
            ModelOp::GetPfn => "get-pfn",
        }
    }
}

/// Parses `text` as `T`, naming the field at fault on error.
///
/// The document must be exactly one JSON object: an array in its place
/// (which serde would read as the struct's fields in order) and anything
/// after it are refused. A document that ends early or is not JSON is a
/// syntax error at a line and column, not a field's fault; an integer too
/// large for 64 bits is said to be one, not shown as a float.
pub fn parse<T: DeserializeOwned>(source: &str, text: &str) -> Result<T, Failure> {
    let body = text.trim_start();
    if !body.starts_with('{') {
        let what = match body.chars().next() {
            None => "nothing".to_owned(),
            Some('[') => "an array".to_owned(),
            Some(c) => format!("`{c}`"),
        };
        return Err(Failure::input(format!(
            "{source}: expected one JSON object ({{...}}), found {what}"
        )));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = out_of_range(text, &inner).unwrap_or_else(|| inner.to_string());
        if path == "." || path == "?" || inner.is_syntax() || inner.is_eof() {
            let kind = if inner.is_eof() {
                "JSON ends early"
            } else if inner.is_syntax() {
                "not valid JSON"
            } else {
                "wrong JSON"
            };
            Failure::input(format!("{source}: {kind}: {msg}"))
        } else {
            Failure::input(format!("{source}: field `{path}`: {msg}"))
        }
    })?;
    de.end().map_err(|e| {
        Failure::input(format!(
            "{source}: more after the JSON object (line {}, column {}): one document only",
            e.line(),
            e.column()
        ))
    })?;
    Ok(value)
}

/// serde_json reads an integer literal beyond 64 bits as a float and then
/// reports "invalid type: floating point"; say what the user wrote.
fn out_of_range(text: &str, e: &serde_json::Error) -> Option<String> {
    if !e.to_string().starts_with("invalid type: floating point") {
        return None;
    }
    let line = text.lines().nth(e.line().checked_sub(1)?)?;
    let end = e.column().min(line.len());
    let head = &line[..end];
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == '-'))
        .map_or(0, |i| i + 1);
    let literal = &head[start..];
    let digits = literal.trim_start_matches('-');
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| {
        format!(
            "{literal} is out of range: numbers here are integers from 0 to {}",
            u64::MAX
        )
    })
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // The model's output types are plain data; serialising them cannot fail.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Answers one model query; `source` names the input in messages.
pub fn answer(op: ModelOp, source: &str, text: &str) -> Result<Value, Failure> {
    let refused =
        |e: InputError| Failure::input(format!("{source}: field `{}`: {}", e.field, e.message));
    Ok(match op {
        ModelOp::Invalidate => to_value(&ops::invalidate(&parse(source, text)?).map_err(refused)?),
        ModelOp::Classify => to_value(&ops::classify(&parse(source, text)?)),
        ModelOp::Prepare => to_value(&ops::prepare(&parse(source, text)?).map_err(refused)?),
        ModelOp::GmemInvalidate => {
            to_value(&ops::rmp_invalidate(&parse(source, text)?).map_err(refused)?)
        }
        ModelOp::PreFault => to_value(&ops::pre_fault(&parse(source, text)?).map_err(refused)?),
        ModelOp::Bind => to_value(&ops::bind(&parse(source, text)?).map_err(refused)?),
        ModelOp::Fallocate => to_value(&ops::fallocate(&parse(source, text)?)),
        ModelOp::Lifecycle => to_value(&ops::lifecycle(&parse(source, text)?).map_err(refused)?),
        ModelOp::PunchHole => to_value(&ops::punch_hole(&parse(source, text)?).map_err(refused)?),
        ModelOp::GetPfn => to_value(&ops::get_pfn(&parse(source, text)?).map_err(refused)?),
    })
}

/// `gmemforge model <op>`: stdin → stdout.
pub fn run_model(op: ModelOp) -> Result<(), Failure> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Failure::input(format!("stdin: cannot read JSON: {e}")))?;
    let out = answer(op, "stdin", &text)?;
    crate::output::emitln(&out.to_string())?;
    Ok(())
}
