//! `review`: a real kernel tree's functions against the model.
//!
//! detect the profile (which generation of guest_memfd the tree carries) →
//! for each operation, find its functions in the tree with the C parser →
//! compile them *unchanged* against the shim (one object per operation, so
//! one function that does not compile costs only its own verdict; static
//! callees gcc reports as undeclared are pulled in from the same files) →
//! run the shared vectors, the exhaustive bound and seeded random cases →
//! one item per operation, named by its kernel functions.

use std::time::Instant;

use gmem_codegen::cparse;
use gmem_reference::Profile;
use serde::Serialize;
use serde_json::Value;

use crate::compile::{COp, CSource, CompileError, load};
use crate::library::Library;
use crate::ops::{OPERATIONS, Operation, Source};
use crate::progress::Event;
use crate::runner::{
    CheckError, Item, Report, Verdict, not_run, provides_define, report, run_item,
};
use crate::tree::Tree;

/// A generation of guest_memfd, as found in a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Detected {
    /// The model profile it maps to.
    #[serde(serialize_with = "profile_name")]
    pub profile: Profile,
    /// 6.18+: per-file workers (`__kvm_gmem_invalidate_begin(f, ...)`)
    /// under per-inode wrappers.
    pub per_inode: bool,
    /// What was seen, in words.
    pub evidence: &'static str,
}

fn profile_name<S: serde::Serializer>(p: &Profile, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// Every file review may read.
pub const FILES: &[&str] = &[
    "virt/kvm/guest_memfd.c",
    "virt/kvm/guest_mem.c",
    "virt/kvm/kvm_main.c",
    "arch/x86/kvm/mmu/mmu_internal.h",
    "arch/x86/kvm/mmu/mmu.c",
    "arch/x86/kvm/svm/svm.c",
    "arch/x86/kvm/svm/sev.c",
    "arch/x86/kvm/x86.c",
    "arch/x86/kvm/vmx/tdx.c",
    "arch/x86/kvm/vmx/common.h",
];

/// What profile detection looks for, for the message when nothing fits.
pub const LOOKED_FOR: &str = "virt/kvm/guest_memfd.c using slot->gmem.pgoff (upstream, 6.8+) \
or virt/kvm/guest_mem.c using slot->gmem.index (gmem-solo-2023)";

/// Detects the tree's generation; None when nothing fits.
pub fn detect(tree: &Tree) -> Option<Detected> {
    if let Some(src) = tree.file("virt/kvm/guest_memfd.c") {
        if src.contains("__kvm_gmem_invalidate_begin") || src.contains("struct gmem_file") {
            return Some(Detected {
                profile: Profile::Upstream,
                per_inode: true,
                evidence: "virt/kvm/guest_memfd.c with the per-inode file list (6.18+ shape: __kvm_gmem_invalidate_begin)",
            });
        }
        if src.contains("gmem.pgoff") {
            return Some(Detected {
                profile: Profile::Upstream,
                per_inode: false,
                evidence: "virt/kvm/guest_memfd.c with slot->gmem.pgoff",
            });
        }
    }
    if tree
        .file("virt/kvm/guest_mem.c")
        .is_some_and(|s| s.contains("gmem.index"))
    {
        return Some(Detected {
            profile: Profile::GmemSolo2023,
            per_inode: false,
            evidence: "virt/kvm/guest_mem.c with slot->gmem.index",
        });
    }
    None
}

/// The functions one operation needs from a tree of the detected shape.
pub fn functions_in(op: COp, d: &Detected) -> &'static [(&'static str, &'static str)] {
    match op {
        COp::Invalidate if d.per_inode => &[
            ("virt/kvm/guest_memfd.c", "__kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_memfd.c", "__kvm_gmem_invalidate_end"),
        ],
        _ => functions_for(op, d.profile),
    }
}

/// The functions one operation needs from a tree, callees first.
pub fn functions_for(op: COp, profile: Profile) -> &'static [(&'static str, &'static str)] {
    const SEV: &str = "arch/x86/kvm/svm/sev.c";
    const MMU: &str = "arch/x86/kvm/mmu/mmu.c";
    match (op, profile) {
        (COp::Invalidate, Profile::Upstream) => &[
            ("virt/kvm/guest_memfd.c", "kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_invalidate_end"),
        ],
        (COp::Invalidate, Profile::GmemSolo2023) => &[
            ("virt/kvm/guest_mem.c", "kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_invalidate_end"),
        ],
        (COp::Bind, Profile::Upstream) => &[("virt/kvm/guest_memfd.c", "kvm_gmem_bind")],
        (COp::Bind, Profile::GmemSolo2023) => &[("virt/kvm/guest_mem.c", "kvm_gmem_bind")],
        (COp::Classify, _) => &[
            ("arch/x86/kvm/mmu/mmu_internal.h", "kvm_mmu_do_page_fault"),
            (MMU, "kvm_mmu_page_fault"),
            ("arch/x86/kvm/svm/svm.c", "npf_interception"),
        ],
        // Their static helpers (is_large_rmp_possible() in 6.12, inlined
        // in gmemforge's C) are pulled in as gcc asks for them.
        (COp::Prepare, _) => &[
            (SEV, "sev_gmem_prepare"),
            (SEV, "sev_private_max_mapping_level"),
        ],
        (COp::RmpInvalidate, _) => &[(SEV, "sev_gmem_invalidate")],
        // 6.12's kvm_tdp_map_page() is the shim's; a 2023 tree gets its
        // own from the series (calling the tree's fault path and rule).
        (COp::Prefault, Profile::Upstream) => &[
            (MMU, "kvm_arch_vcpu_pre_fault_memory"),
            ("virt/kvm/kvm_main.c", "kvm_vcpu_pre_fault_memory"),
        ],
        (COp::Prefault, Profile::GmemSolo2023) => &[
            ("arch/x86/kvm/mmu/mmu_internal.h", "kvm_mmu_do_page_fault"),
            (MMU, "kvm_tdp_map_page"),
            (MMU, "kvm_arch_vcpu_pre_fault_memory"),
            ("virt/kvm/kvm_main.c", "kvm_vcpu_pre_fault_memory"),
        ],
        (COp::PunchHole, Profile::Upstream) => &[
            (SEV, "sev_gmem_invalidate"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_invalidate_end"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_free_folio"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_punch_hole"),
        ],
        (COp::PunchHole, Profile::GmemSolo2023) => &[
            (SEV, "sev_gmem_invalidate"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_invalidate_end"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_free_folio"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_punch_hole"),
        ],
        // Its static helpers (kvm_gmem_prepare_folio() and below in 6.12,
        // kvm_gmem_get_folio() in 2023) are pulled in as gcc asks. The hook
        // behind it is optional: a tree whose fault path reaches no hook is
        // reviewed (and diverges), not missing.
        (COp::GetPfn, Profile::Upstream) => &[("virt/kvm/guest_memfd.c", "kvm_gmem_get_pfn")],
        (COp::GetPfn, Profile::GmemSolo2023) => &[("virt/kvm/guest_mem.c", "kvm_gmem_get_pfn")],
    }
}

/// The tables through which the kernel reaches an operation's hooks, as
/// (file, table, members kept). The adapters register them as the kernel
/// does (`mapping->a_ops`, `kvm_ops_update()`), so a hook the tree's table
/// lacks is not called. An empty member list compiles the initializer
/// unchanged (its other members' functions are pulled in like callees);
/// otherwise only the listed members' lines and the preprocessor lines
/// around them are kept, because a vendor table names hundreds of
/// functions the shim has no business compiling.
pub fn tables_for(
    op: COp,
    profile: Profile,
) -> &'static [(&'static str, &'static str, &'static [&'static str])] {
    const SVM: &str = "arch/x86/kvm/svm/svm.c";
    match (op, profile) {
        (COp::GetPfn, _) => &[(SVM, "svm_x86_ops", &["gmem_prepare"])],
        (COp::Prepare, _) => &[(SVM, "svm_x86_ops", &["private_max_mapping_level"])],
        (COp::PunchHole, Profile::Upstream) => &[
            ("virt/kvm/guest_memfd.c", "kvm_gmem_aops", &[]),
            (SVM, "svm_x86_ops", &["gmem_invalidate"]),
        ],
        (COp::PunchHole, Profile::GmemSolo2023) => &[
            ("virt/kvm/guest_mem.c", "kvm_gmem_aops", &[]),
            (SVM, "svm_x86_ops", &["gmem_invalidate"]),
        ],
        _ => &[],
    }
}

/// A variable's initializer in `src`: from the unindented line declaring
/// `name` and ending in `= {` through the `};` that closes it, with the
/// 1-based line it starts on. None when absent or declared twice.
pub fn initializer<'s>(src: &'s str, name: &str) -> Option<(&'s str, usize)> {
    let mut found = None;
    let mut at = 0;
    for (n, line) in src.split_inclusive('\n').enumerate() {
        let l = line.trim_end();
        let declares = l
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == name);
        if !l.starts_with(char::is_whitespace) && l.ends_with("= {") && declares {
            if found.is_some() {
                return None;
            }
            found = Some((at, n + 1));
        }
        at += line.len();
    }
    let (start, line) = found?;
    let end = src[start..].find("\n};").map(|e| start + e + 3)?;
    Some((&src[start..end], line))
}

/// A table's text for the unit: whole (`keep` empty) or reduced to the
/// `keep` members and preprocessor lines, each with a `#line` into the tree.
fn table_text(path: &str, text: &str, line: usize, keep: &[&str]) -> String {
    if keep.is_empty() {
        return format!("#line {line} \"{path}\"\n{text}\n\n");
    }
    let mut out = String::new();
    let last = text.lines().count().saturating_sub(1);
    for (k, l) in text.lines().enumerate() {
        let t = l.trim_start();
        let member = t.strip_prefix('.').and_then(|m| {
            m.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
        });
        if k == 0 || k == last || t.starts_with('#') || member.is_some_and(|m| keep.contains(&m)) {
            out.push_str(&format!("#line {} \"{path}\"\n{l}\n", line + k));
        }
    }
    out + "\n"
}

/// Optional helpers a tree may define itself (2023 SNP trees carry
/// kvm_mmu_fault_is_private()): the operations that use one, where it is.
/// x86.c's wrappers of the generic gmem hooks (the shim's stand-ins for
/// them dispatch through kvm_x86_ops the same way) too.
const OPTIONAL: &[(&[COp], &str, &str)] = &[
    (
        &[COp::Classify, COp::Prefault],
        "arch/x86/kvm/mmu/mmu_internal.h",
        "kvm_mmu_fault_is_private",
    ),
    // 6.16+ TDX: the EPT violation exit, which marks a fault private from
    // the GPA's shared bit (its helpers come from CALLEE_FILES). With it,
    // classify runs TDX cases through the tree.
    (
        &[COp::Classify],
        "arch/x86/kvm/vmx/tdx.c",
        "tdx_handle_ept_violation",
    ),
    (&[COp::GetPfn], "arch/x86/kvm/svm/sev.c", "sev_gmem_prepare"),
    (
        &[COp::GetPfn],
        "arch/x86/kvm/x86.c",
        "kvm_arch_gmem_prepare",
    ),
    (
        &[COp::PunchHole],
        "arch/x86/kvm/x86.c",
        "kvm_arch_gmem_invalidate",
    ),
    // 6.18+'s host-mapping fault handler: compiled with get-pfn (it shares
    // kvm_gmem_get_folio()), so a tree whose mmap path does not build
    // against the shim says so; no operation runs it.
    (
        &[COp::GetPfn],
        "virt/kvm/guest_memfd.c",
        "kvm_gmem_fault_user_mapping",
    ),
];

/// Files searched for static callees only, never for an operation's own
/// functions: 6.12 has a vmx/common.h too, whose EPT-violation helper
/// belongs to no operation until a tdx.c calls it.
const CALLEE_FILES: &[(&[COp], &str)] = &[(&[COp::Classify], "arch/x86/kvm/vmx/common.h")];

/// One function's text with a `#line` so compiler messages point at the
/// tree's own file and line.
fn with_line(path: &str, f: &cparse::CFunction, src: &str) -> String {
    format!("#line {} \"{}\"\n{}\n\n", f.line, path, f.text(src))
}

/// The names gcc says are undeclared functions: called (false), or named
/// in a table's initializer (true).
fn undeclared(log: &str) -> Vec<(String, bool)> {
    log.lines()
        .filter_map(|l| {
            l.split("implicit declaration of function '")
                .nth(1)
                .map(|r| (r, false))
                // Declared by the shim's headers, defined nowhere yet:
                // the linker names it (`-z defs`).
                .or_else(|| {
                    l.split("undefined reference to `")
                        .nth(1)
                        .map(|r| r.split('\'').next().unwrap_or(r))
                        .map(|r| (r, false))
                })
                .or_else(|| {
                    l.contains("' undeclared")
                        .then(|| l.split("error: '").nth(1))
                        .flatten()
                        .map(|r| (r, true))
                })
        })
        .filter_map(|(rest, table)| {
            rest.split(['\'', '`'])
                .next()
                .map(|n| (n.to_owned(), table))
        })
        .collect()
}

struct Extracted {
    text: String,
    /// The tables, compiled after every function.
    tables: String,
    defines: Vec<String>,
}

/// Finds the operation's functions; Err names what is missing and where
/// it looked.
fn extract(tree: &Tree, op: COp, d: &Detected) -> Result<Extracted, String> {
    let mut text = String::new();
    let mut defines = Vec::new();
    if d.per_inode {
        defines.push("GMF_GMEM_PER_INODE".to_owned());
    }
    for (path, name) in functions_in(op, d) {
        let src = tree
            .file(path)
            .ok_or_else(|| format!("{name}(): {path} is not in the tree"))?;
        let f = cparse::find(src, name)
            .map_err(|e| format!("{path}: {e}"))?
            .ok_or_else(|| format!("{name}(): no single definition in {path}"))?;
        text.push_str(&with_line(path, &f, src));
        defines.extend(provides_define(name).map(str::to_owned));
        // 6.13+ hands the page back too: the adapter calls the signature
        // the tree has.
        if *name == "kvm_gmem_get_pfn" && f.text(src).contains("struct page **") {
            defines.push("GMF_GET_PFN_PAGE".to_owned());
        }
    }
    for (ops, path, name) in OPTIONAL {
        if !ops.contains(&op) {
            continue;
        }
        if let Some(src) = tree.file(path)
            && let Ok(Some(f)) = cparse::find(src, name)
        {
            text = with_line(path, &f, src) + &text;
            defines.extend(provides_define(name).map(str::to_owned));
        }
    }
    // Tables last: they name the functions above (static ones included).
    let mut tables = String::new();
    for (path, name, keep) in tables_for(op, d.profile) {
        if let Some(src) = tree.file(path)
            && let Some((t, line)) = initializer(src, name)
        {
            tables.push_str(&table_text(path, t, line, keep));
            defines.extend(provides_define(name).map(str::to_owned));
        }
    }
    // The tree's own struct kvm_page_fault decides the error code's width.
    if op == COp::Classify
        && let Some(h) = tree.file("arch/x86/kvm/mmu/mmu_internal.h")
        && h.contains("const u32 error_code;")
    {
        defines.push("GMF_FAULT_ERROR_CODE_T=u32".into());
    }
    Ok(Extracted {
        text,
        tables,
        defines,
    })
}

/// Compiles the extracted functions, adding static callees from the
/// operation's files when gcc reports them undeclared.
fn build(
    tree: &Tree,
    op: COp,
    d: &Detected,
    name: &str,
    ex: Extracted,
) -> Result<Library, CompileError> {
    let profile = d.profile;
    let text = ex.text;
    // Static callees, in the order they are compiled: before the functions
    // that call them. One that gcc still finds undeclared is called by a
    // callee pulled in after it, and moves to the front.
    let mut callees: Vec<(String, String)> = Vec::new();
    // Functions only a table names (kvm_gmem_aops' other members): after
    // the operation's functions, which they may call, before the tables.
    let mut for_tables = String::new();
    let mut added: Vec<String> = Vec::new();
    for _ in 0..8 {
        let pulled: String = callees.iter().map(|(_, t)| t.as_str()).collect();
        let whole = format!("{pulled}{text}{for_tables}{}", ex.tables);
        match load(&CSource {
            name,
            profile,
            text: &whole,
            ops: &[op],
            defines: &ex.defines,
        }) {
            Ok(lib) => return Ok(lib),
            Err(CompileError::Rejected { unit, log }) => {
                let mut progress = false;
                for (missing, in_table) in undeclared(&log) {
                    if let Some(k) = callees.iter().position(|(n, _)| *n == missing) {
                        if k > 0 {
                            let c = callees.remove(k);
                            callees.insert(0, c);
                            progress = true;
                        }
                        continue;
                    }
                    if added.contains(&missing) {
                        continue;
                    }
                    let optional = OPTIONAL
                        .iter()
                        .filter(|(ops, ..)| ops.contains(&op))
                        .map(|(_, p, _)| p);
                    let tables = tables_for(op, d.profile).iter().map(|(p, ..)| p);
                    let more = CALLEE_FILES
                        .iter()
                        .filter(|(ops, _)| ops.contains(&op))
                        .map(|(_, p)| p);
                    for path in functions_in(op, d)
                        .iter()
                        .map(|(p, _)| p)
                        .chain(optional)
                        .chain(tables)
                        .chain(more)
                    {
                        if let Some(src) = tree.file(path)
                            && let Ok(Some(f)) = cparse::find(src, &missing)
                        {
                            if in_table {
                                for_tables.push_str(&with_line(path, &f, src));
                            } else {
                                callees.insert(0, (missing.clone(), with_line(path, &f, src)));
                            }
                            added.push(missing.clone());
                            progress = true;
                            break;
                        }
                    }
                }
                if !progress {
                    return Err(CompileError::Rejected { unit, log });
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(CompileError::Io(format!(
        "{name}: callees kept appearing; gave up after {} added",
        added.len()
    )))
}

/// The whole review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The tree, in words.
    pub tree: String,
    /// Detected generation.
    pub detected: Detected,
    /// The verdicts.
    #[serde(flatten)]
    pub report: Report,
}

/// Reviews `tree`. `Err` when no profile fits (the message says what was
/// looked for). `progress` is told how many items the review makes, then
/// when each starts and ends (`progress::Event`).
pub fn review(
    tree: &Tree,
    sources: &[Source],
    jobs: u64,
    vectors: &dyn Fn(&str) -> Vec<Value>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Review, CheckError> {
    let detected = detect(tree).ok_or_else(|| {
        let holds_gmem = ["virt/kvm/guest_memfd.c", "virt/kvm/guest_mem.c"]
            .iter()
            .any(|f| tree.has(f));
        CheckError::BadInput(if holds_gmem {
            format!(
                "{}: no known guest_memfd generation; looked for {LOOKED_FOR}",
                tree.describe()
            )
        } else {
            format!(
                "{}: the tree has no guest_memfd (neither virt/kvm/guest_memfd.c nor \
                 virt/kvm/guest_mem.c): nothing to review",
                tree.describe()
            )
        })
    })?;
    let started = Instant::now();
    let mut items: Vec<Item> = Vec::new();
    let implementation = tree.describe();
    // One unit of work per operation: each makes exactly one item, found,
    // missing or in error.
    progress(Event::Total(OPERATIONS.len() as u64));
    for op in OPERATIONS {
        let function = functions_in(op.cop, &detected)
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ");
        let what = format!("{} {}", op.name, function);
        progress(Event::Start(&what));
        let item = match extract(tree, op.cop, &detected) {
            Err(why) => not_run(op, &implementation, function, Verdict::Missing, why),
            Ok(ex) => {
                progress(Event::Step(&format!(
                    "compiling {} for {}",
                    function, op.name
                )));
                let name = format!("{implementation} {}", op.name);
                match build(tree, op.cop, &detected, &name, ex) {
                    Ok(lib) => {
                        progress(Event::Step(&what));
                        run_item(
                            op,
                            &implementation,
                            function,
                            &lib,
                            detected.profile,
                            sources,
                            jobs,
                            vectors,
                        )
                    }
                    Err(e @ CompileError::Load(_)) => {
                        return Err(CheckError::Internal(e.to_string()));
                    }
                    Err(e) => not_run(op, &implementation, function, Verdict::Error, e.to_string()),
                }
            }
        };
        progress(Event::Done {
            vectors: item.vectors,
        });
        items.push(item);
    }
    Ok(Review {
        tree: implementation,
        detected,
        report: report(items, started),
    })
}

/// The operation whose registry entry is `cop`.
pub fn operation(cop: COp) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.cop == cop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVM: &str = "\
static int npf(void) { return 0; }

static struct kvm_x86_ops svm_x86_ops __initdata = {
\t.name = KBUILD_MODNAME,
\t.vcpu_create = svm_vcpu_create,

#ifdef CONFIG_KVM_AMD_SEV
\t.mem_enc_ioctl = sev_mem_enc_ioctl,
\t.gmem_prepare = sev_gmem_prepare,
\t.gmem_invalidate = sev_gmem_invalidate,
#endif
};
";

    #[test]
    fn a_vendor_table_is_reduced_to_the_members_kept() {
        let (t, line) = initializer(SVM, "svm_x86_ops").expect("found");
        assert_eq!(line, 3);
        assert!(t.ends_with("#endif\n};"), "{t}");
        let out = table_text("svm.c", t, line, &["gmem_prepare"]);
        let code: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with("#line") && !l.is_empty())
            .collect();
        assert_eq!(
            code,
            [
                "static struct kvm_x86_ops svm_x86_ops __initdata = {",
                "#ifdef CONFIG_KVM_AMD_SEV",
                "\t.gmem_prepare = sev_gmem_prepare,",
                "#endif",
                "};"
            ]
        );
        // Each kept line keeps its own line number in the tree.
        assert!(out.contains("#line 9 \"svm.c\"\n\t.gmem_prepare"), "{out}");
        // Whole: unchanged.
        assert!(table_text("svm.c", t, line, &[]).contains(t));
        assert_eq!(initializer(SVM, "kvm_gmem_aops"), None);
    }

    #[test]
    fn gcc_names_undeclared_callees_and_table_members() {
        let log = "x.c:3:5: error: implicit declaration of function 'kvm_gmem_get_index' [-Werror=implicit-function-declaration]\n\
                   x.c:9:20: error: 'kvm_gmem_error_folio' undeclared here (not in a function)\n\
                   /usr/bin/ld: /tmp/cc1.o: in function `gmf_get_pfn':\n\
                   unit.c:(.text+0x1d): undefined reference to `sev_gmem_prepare'\n";
        assert_eq!(
            undeclared(log),
            [
                ("kvm_gmem_get_index".to_owned(), false),
                ("kvm_gmem_error_folio".to_owned(), true),
                ("sev_gmem_prepare".to_owned(), false)
            ]
        );
    }
}
