//! `--build` and `--kunit` in the series: every prefix of the series
//! built by the tree's own Kbuild ([`crate::kbuild`]), then the series'
//! KUnit suites under QEMU; stdout's account of it, and the sentence the
//! cover letter may say about it.

use gmem_checker::tree::TreeSource;
use gmem_codegen::kunit;
use gmem_codegen::series::email;

use crate::Error;
use crate::kbuild;
use crate::pipeline::{Build, Progress};

/// What `--build` (and `--kunit`) found.
pub(crate) struct Proof {
    /// 1 when a prefix fails or a suite does not pass (the series is
    /// written either way), else 0.
    pub(crate) code: u8,
    /// stdout's account: each prefix's build, then the suites' runs.
    pub(crate) report: String,
    /// For the cover letter: what passed (nothing is claimed for what
    /// failed).
    pub(crate) said: Option<String>,
}

/// `--build` (and `--kunit`): every prefix built by the kernel's own
/// Kbuild, in the build area of `src`; then the series' suites under QEMU.
pub(crate) fn prove(
    build: &Build,
    src: &TreeSource,
    commit: Option<&str>,
    patches: &[kbuild::Patch<'_>],
    series_files: &[String],
    progress: &dyn Progress,
) -> Result<Proof, Error> {
    let jobs = build
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let say = |m: &str| progress.step(m);
    let area = kbuild::Area::open(src, commit, &say)?;
    let results = kbuild::build_every_prefix(&area, patches, jobs, &say)?;
    let mut text = String::from("\nkernel build (make W=1 arch/x86/kvm/), every prefix:\n");
    let mut failed = false;
    for r in &results {
        let verdict = if r.error.is_some() {
            "FAILS"
        } else if !r.new_warnings.is_empty() {
            "WARNS"
        } else {
            "builds"
        };
        text.push_str(&format!(
            "  {verdict:<6} {:<60} {:>4} objects, {} new warnings, {:.1}s\n",
            r.label,
            r.objects,
            r.new_warnings.len(),
            r.seconds
        ));
        for w in &r.new_warnings {
            text.push_str(&format!("           {w}\n"));
        }
        if let Some(e) = &r.error {
            text.push_str(&format!("           {e}\n"));
        }
        failed |= verdict != "builds";
    }
    if results.len() < patches.len() + 1 {
        text.push_str(&format!(
            "  not built: patches {}..{} (after the first failure)\n",
            results.len(),
            patches.len()
        ));
    }
    let mut kunit_said = None;
    if build.kunit && !failed {
        // The series' suites as the patched tree has them (written now or
        // there already): each `.kunitconfig` beside a suite that enables
        // one of them. kunit.py runs exactly those directories, as a
        // developer would (`--kunitconfig=virt/kvm`).
        let mut suites = std::collections::BTreeSet::new();
        let mut dirs = Vec::new();
        let looked: Vec<&String> = series_files
            .iter()
            .filter(|p| p.ends_with("/.kunitconfig"))
            .collect();
        for path in &looked {
            let Some(text) = area.read(path) else {
                continue;
            };
            let enabled: Vec<String> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("CONFIG_")?.strip_suffix("=y"))
                .filter(|s| kunit::SUITES.iter().any(|(c, _)| c == s))
                .map(str::to_owned)
                .collect();
            if !enabled.is_empty() {
                suites.extend(enabled);
                dirs.extend(path.strip_suffix("/.kunitconfig").map(str::to_owned));
            }
        }
        if dirs.is_empty() {
            // Said, and the exit status tells: --kunit asked for suites
            // that the patched tree does not have (their patch not written).
            text.push_str(&format!(
                "\nKUnit: not run: no suite of the series is in the patched tree \
                 (looked for {} enabling {})\n",
                looked
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                kunit::SUITES
                    .iter()
                    .map(|(c, _)| format!("CONFIG_{c}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
            return Ok(Proof {
                code: 1,
                report: text,
                said: None,
            });
        }
        say("running the KUnit suites under QEMU (kunit.py)");
        let k = kbuild::run_kunit(&area, &dirs, jobs)?;
        text.push_str(&format!(
            "\nKUnit (kunit.py run --arch=x86_64), {:.0}s:\n",
            k.seconds
        ));
        for (suite, (p, f, sk)) in &k.suites {
            text.push_str(&format!(
                "  {suite}: {p} passed, {f} failed, {sk} skipped\n"
            ));
        }
        text.push_str(&format!("  {}\n", k.summary.replace('\n', "\n  ")));
        // Each suite the series adds must have run, not only passed.
        let mut missing = Vec::new();
        for (config, suite) in kunit::SUITES {
            if suites.contains(*config) && !k.suites.contains_key(*suite) {
                missing.push(*suite);
            }
        }
        if !missing.is_empty() {
            text.push_str(&format!("  did not run: {}\n", missing.join(", ")));
        }
        failed |= !k.passed || !missing.is_empty();
        if !failed {
            let runs: Vec<String> = k
                .suites
                .iter()
                .map(|(suite, (p, _, sk))| format!("{suite} ({p} passed, {sk} skipped)"))
                .collect();
            kunit_said = Some(format!(
                " The KUnit suites pass under QEMU (kunit.py run --arch=x86_64): {}.",
                email::and_list(&runs.iter().map(String::as_str).collect::<Vec<_>>())
            ));
        }
    }
    let said = (!failed).then(|| {
        format!(
            "The base and every prefix of the series build with make W=1 \
             arch/x86/kvm/ (x86_64 defconfig with KVM, KVM_AMD and KVM_AMD_SEV), \
             with no new warnings.{}",
            kunit_said.unwrap_or_default()
        )
    });
    Ok(Proof {
        code: u8::from(failed),
        report: text,
        said,
    })
}
