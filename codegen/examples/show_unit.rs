//! Prints a unit's C: `cargo run -p gmem-codegen --example show_unit -- builtin:upstream`.
fn main() {
    let which = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "builtin:upstream".into());
    let unit = match which.split_once(':') {
        Some(("builtin", p)) => gmem_reference::Profile::ALL
            .into_iter()
            .find(|x| x.name() == p)
            .ok_or_else(|| format!("no profile {p}"))
            .and_then(|p| gmem_codegen::unit::builtin(p).map_err(|e| e.to_string())),
        Some(("mutant", m)) => gmem_codegen::unit::mutant(m).map_err(|e| e.to_string()),
        _ => Err(format!("{which}: builtin:<profile> or mutant:<name>")),
    };
    match unit {
        Ok(u) => print!("{}", u.text()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}
