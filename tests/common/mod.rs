//! What several test files share: Debian's 6.12 source, whole, with the
//! 2023 forms written back (the base `series --build` and `--kunit` are
//! tried on).

#![allow(dead_code)] // each test file uses its part

use std::path::Path;
use std::process::Command;

/// Debian's linux-source-6.12 tarball (scripts/test.sh installs it).
pub const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

/// The 2023 range formula in place of 6.12's clamp.
pub const RANGE_2023: [(&str, &str); 2] = [
    (
        ".start = slot->base_gfn + max(pgoff, start) - pgoff,",
        ".start = slot->base_gfn + start - pgoff,",
    ),
    (
        ".end = slot->base_gfn + min(pgoff + slot->npages, end) - pgoff,",
        ".end = slot->base_gfn + min(end - pgoff, slot->npages),",
    ),
];

/// The 2023 32-bit `err` of kvm_mmu_do_page_fault().
pub const ERR_U32: (&str, &str) = ("u64 err, bool prefetch,", "u32 err, bool prefetch,");

/// Unpacks the whole 6.12 source into `dir` and writes back the 2023
/// range formula, and the 32-bit `err` when `u32_err`.
pub fn base_612(dir: &Path, u32_err: bool) {
    assert!(
        Path::new(TARBALL).exists(),
        "{TARBALL} is missing: install linux-source-6.12 (scripts/test.sh does)"
    );
    std::fs::create_dir_all(dir).expect("mkdir");
    let o = Command::new("tar")
        .arg("-xf")
        .arg(TARBALL)
        .arg("-C")
        .arg(dir)
        .arg("--strip-components=1")
        .output()
        .expect("tar runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let edit = |path: &str, (from, to): (&str, &str)| {
        let p = dir.join(path);
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains(from), "{path}: {from}");
        std::fs::write(&p, text.replace(from, to)).expect("write");
    };
    for e in RANGE_2023 {
        edit("virt/kvm/guest_memfd.c", e);
    }
    if u32_err {
        edit("arch/x86/kvm/mmu/mmu_internal.h", ERR_U32);
    }
}
