//! The shim's own C-level smoke test (c/testunits/run-smoke.sh): team-written
//! test units for both profiles and the rmp-under-mmu-lock variant, built
//! with gcc and checked from C, independently of the Rust side.

use std::process::Command;

#[test]
fn shim_smoke_test_passes_in_c() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/c/testunits/run-smoke.sh");
    let out = Command::new("sh").arg(script).output().expect("sh runs");
    assert!(
        out.status.success(),
        "run-smoke.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
