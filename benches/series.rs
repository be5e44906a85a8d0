//! `cargo bench --bench series`: generating the series for a git repository
//! of Linux 6.12's files with the two 2023 bugs written back, in one run,
//! next to `git format-patch` of the same commits and Coccinelle (`spatch`,
//! Debian's coccinelle) doing patch 1's rewrite alone.
//!
//! What each does differs, and the figures say so: `series` reviews the
//! tree (compile, every vector, the exhaustive bound), places and commits
//! both patches, writes them and reviews the result; `git format-patch`
//! only formats commits that already exist; `spatch` only rewrites one
//! expression pair in one file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
const FILES: &[&str] = &[
    "virt/kvm/guest_memfd.c",
    "virt/kvm/kvm_main.c",
    "arch/x86/kvm/mmu/mmu_internal.h",
    "arch/x86/kvm/mmu/mmu.c",
    "arch/x86/kvm/svm/svm.c",
    "arch/x86/kvm/svm/sev.c",
    "virt/kvm/Kconfig",
];

fn run(cmd: &mut Command) -> f64 {
    run_ok(cmd, &[0])
}

/// Runs `cmd`, which must exit with one of `ok`, and times it.
fn run_ok(cmd: &mut Command, ok: &[i32]) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("runs");
    assert!(
        out.status.code().is_some_and(|c| ok.contains(&c)),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir).args([
        "-c",
        "user.name=Bench",
        "-c",
        "user.email=bench@example.org",
    ]);
    c
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_gmemforge");
    let root = std::env::temp_dir().join(format!("gmemforge-series-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let base: PathBuf = root.join("base");
    // The 6.12 files, with the 2023 forms written back.
    let tar = Command::new("tar")
        .args(["-xJf", TARBALL, "-C"])
        .arg(
            std::fs::create_dir_all(&root)
                .map(|()| &root)
                .expect("mkdir"),
        )
        .args(["--strip-components=1", "--wildcards"])
        .args(FILES.iter().map(|f| format!("*/{f}")))
        .status()
        .expect("tar runs");
    assert!(tar.success());
    std::fs::create_dir_all(&base).expect("mkdir");
    for f in FILES {
        let text = std::fs::read_to_string(root.join(f)).expect("extracted");
        let text = text
            .replace(
                ".start = slot->base_gfn + max(pgoff, start) - pgoff,",
                ".start = slot->base_gfn + start - pgoff,",
            )
            .replace(
                ".end = slot->base_gfn + min(pgoff + slot->npages, end) - pgoff,",
                ".end = slot->base_gfn + min(end - pgoff, slot->npages),",
            )
            .replace("u64 err, bool prefetch,", "u32 err, bool prefetch,");
        let p = base.join(f);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    std::fs::write(base.join("Makefile"), "# bench\n").expect("write");
    run(git(&base).args(["init", "-q"]));
    run(git(&base).args(["add", "-f", "."]));
    run(git(&base).args(["commit", "-q", "-m", "base"]));

    // Warm the compile cache once, so the figures are of steady state.
    let out = root.join("out");
    let series = |out: &Path| {
        run(Command::new(bin)
            .args([
                "series",
                "--quiet",
                "--random",
                "2000",
                "--from",
                "Bench <bench@example.org>",
                "--force",
                "--tree",
            ])
            .arg(&base)
            .arg("--out")
            .arg(out))
    };
    series(&out);
    let t_series = series(&out);
    // The base has both bugs: review exits 1 (diverges), as it should.
    let t_review = run_ok(
        Command::new(bin)
            .args(["review", "--quiet", "--random", "2000", "--tree"])
            .arg(&base),
        &[1],
    );

    // git format-patch of the same commits (applied to a clone).
    let clone = root.join("clone");
    run(Command::new("git")
        .args(["clone", "-q"])
        .arg(&base)
        .arg(&clone));
    let mut patches: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("e").path())
        .collect();
    patches.sort();
    run(git(&clone).arg("am").arg("-q").args(&patches[1..]));
    let t_format = run(git(&clone)
        .args(["format-patch", "-q", "--cover-letter", "-o"])
        .arg(root.join("fp"))
        .arg("HEAD~3"));

    // Coccinelle: patch 1's rewrite of guest_memfd.c.
    let cocci = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/range-2023-to-upstream.cocci"
    );
    let t_spatch = run(Command::new("spatch")
        .args(["--very-quiet", "--sp-file", cocci])
        .arg(base.join("virt/kvm/guest_memfd.c")));

    println!("gmemforge series (review + 3 patches + result review): {t_series:>7.3}s");
    println!("  of which one review of the base (gmemforge review):  {t_review:>7.3}s");
    println!("git format-patch of the same 3 commits + cover:        {t_format:>7.3}s");
    println!("spatch, patch 1's rewrite of guest_memfd.c only:       {t_spatch:>7.3}s");
    println!();
    println!("series / format-patch: {:>6.1}x", t_series / t_format);
    println!("series / spatch:       {:>6.1}x", t_series / t_spatch);
    println!(
        "series without its two reviews / format-patch: {:>6.1}x",
        (t_series - 2.0 * t_review).max(0.0) / t_format
    );
    let _ = std::fs::remove_dir_all(&root);
}
