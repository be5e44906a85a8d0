//! Records the target triple so the checker can ask `cc` for the right C
//! compiler at run time (cc reads TARGET/HOST from the environment only in
//! build scripts).
fn main() {
    for var in ["TARGET", "HOST"] {
        let v = std::env::var(var).unwrap_or_default();
        println!("cargo:rustc-env=GMF_{var}={v}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
