//! Why the model answers as it does: for each operation, the rules that
//! decided, with the values they compared.
//!
//! The operations themselves return plain answers and stay fast (the
//! checker runs millions of cases a second through some of them); an
//! explanation is wanted only for the one case a counterexample shows. So
//! each function here re-runs its operation's decisions on the same input
//! and says, in the kernel's terms, which check refused or which branch was
//! taken (`offset + npages * PAGE_SIZE > i_size: 16384 > 4096 → -EINVAL`;
//! `error code bit 34 (PFERR_GUEST_ENC) set → private`). The tests at the
//! end check that each explanation reaches the answer the model gives.
//!
//! Like the rest of the model: no IO, no panics; an input the model
//! refuses is explained as that refusal.

use crate::binding::{BindContract, BindInput, bindings_of, memslot_checks};
use crate::error::InputError;
use crate::fault::{FaultInput, FaultRule, Outcome, PrivateWhen, RuleSource};
use crate::invalidate::{Bindings, gfn_range_for};
use crate::kernel::{
    KVM_MEM_MAX_NR_PAGES, PAGE_SHIFT, PAGE_SIZE, PFERR_GUEST_ENC_MASK, PFERR_RSVD_MASK,
    PFERR_SYNTHETIC_MASK, PG_LEVEL_2M, PG_LEVEL_4K, PMD_ORDER, PTRS_PER_PMD, errno,
};
use crate::ops::{GetPfnQuery, InvalidateQuery, PrepareQuery, PunchQuery, RmpInvalidateQuery};
use crate::prefault::PreFaultInput;
use crate::profile::Profile;
use crate::rmp::{PageSize, Rmp};
use crate::rules::{max_level_for_order, rmp_use_2m_update};

/// Most per-step lines one explanation lists (pfn walks, pre-fault calls,
/// faults); the rest are counted in one closing line.
pub const MAX_STEPS: usize = 8;

/// `-EINVAL` for -22, the number for anything else.
fn en(ret: i64) -> String {
    if ret == 0 {
        "0".into()
    } else {
        errno::name(ret).unwrap_or_else(|| ret.to_string())
    }
}

fn refused(e: &InputError) -> Vec<String> {
    vec![format!("the model refuses the input: {e}")]
}

/// Collects step lines up to [`MAX_STEPS`], counting the rest.
#[derive(Default)]
struct Steps {
    lines: Vec<String>,
    more: usize,
}

impl Steps {
    fn push(&mut self, line: String) {
        if self.lines.len() < MAX_STEPS {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self, what: &str) -> Vec<String> {
        if self.more > 0 {
            self.lines
                .push(format!("... and {} more {what} like these", self.more));
        }
        self.lines
    }
}

/// `bind`: the memslot check or `kvm_gmem_bind()` check that refused, or
/// the binding made.
pub fn bind(q: &BindInput) -> Vec<String> {
    let new = &q.new;
    match memslot_checks(q) {
        Err(e) => return refused(&e),
        Ok(Some(ret)) => {
            let size = new.npages << PAGE_SHIFT;
            let rule = if new.npages > KVM_MEM_MAX_NR_PAGES {
                format!(
                    "npages > KVM_MEM_MAX_NR_PAGES: {} > {KVM_MEM_MAX_NR_PAGES}",
                    new.npages
                )
            } else if new
                .base_gfn
                .checked_add(new.npages)
                .is_none_or(|e| e >= 1 << (64 - PAGE_SHIFT))
            {
                format!(
                    "guest_phys_addr + memory_size wraps: gfn {:#x} + {} pages passes 2^64",
                    new.base_gfn, new.npages
                )
            } else if q.profile == Profile::Upstream && new.offset & (PAGE_SIZE - 1) != 0 {
                format!(
                    "guest_memfd_offset not page aligned: {} & (PAGE_SIZE - 1) = {}",
                    new.offset,
                    new.offset & (PAGE_SIZE - 1)
                )
            } else if q.profile == Profile::Upstream && new.offset.checked_add(size).is_none() {
                format!(
                    "guest_memfd_offset + memory_size wraps: {} + {size} passes 2^64",
                    new.offset
                )
            } else {
                let end = new.base_gfn + new.npages;
                match q
                    .slots
                    .iter()
                    .find(|s| new.base_gfn < s.base_gfn + s.npages && s.base_gfn < end)
                {
                    Some(s) => format!(
                        "gfns [{:#x}, {end:#x}) overlap memslot {}'s [{:#x}, {:#x})",
                        new.base_gfn,
                        s.id,
                        s.base_gfn,
                        s.base_gfn + s.npages
                    ),
                    None => "a memslot check".into(),
                }
            };
            return vec![format!(
                "__kvm_set_memory_region(), before kvm_gmem_bind(): {rule} → {}",
                en(i64::from(ret))
            )];
        }
        Ok(None) => {}
    }
    let size = new.npages << PAGE_SHIFT;
    // The 7.2 split: prepare makes the file checks, commit the overlap.
    let (prep, commit) = match q.contract {
        BindContract::Bind => ("kvm_gmem_bind()", "kvm_gmem_bind()"),
        BindContract::PrepareCommit => (
            "kvm_gmem_prepare_memory_region()",
            "kvm_gmem_commit_memory_region()",
        ),
    };
    let Some(file) = q.files.iter().find(|f| f.fd == new.fd) else {
        return vec![if q.profile.bind_bad_fd_is_ebadf() {
            format!("fget({}) fails: no such open file → -EBADF", new.fd)
        } else {
            format!(
                "fget({}) fails: no such open file → -EINVAL (this generation returns -EINVAL for every refusal)",
                new.fd
            )
        }];
    };
    if !file.gmem {
        return vec![format!(
            "fd {} is not a guest_memfd (file->f_op != &kvm_gmem_fops) → -EINVAL",
            new.fd
        )];
    }
    if file.other_vm {
        return vec![format!(
            "fd {}'s guest_memfd belongs to another VM (gmem->kvm != kvm) → -EINVAL",
            new.fd
        )];
    }
    let mut out = Vec::new();
    let end = new.offset.wrapping_add(size);
    let wraps = if new.offset.checked_add(size).is_none() {
        " (wrapped)"
    } else {
        ""
    };
    match q.profile {
        Profile::Upstream => {
            if new.offset & (PAGE_SIZE - 1) != 0 {
                return vec![format!(
                    "{prep}: offset not page aligned: {} & (PAGE_SIZE - 1) = {} → -EINVAL",
                    new.offset,
                    new.offset & (PAGE_SIZE - 1)
                )];
            }
        }
        Profile::GmemSolo2023 => {
            if (new.offset as i64) < 0 {
                return vec![format!(
                    "kvm_gmem_bind(): offset < 0 as a loff_t: {} → -EINVAL",
                    new.offset as i64
                )];
            }
        }
    }
    if end > file.size {
        return vec![format!(
            "{prep}: offset + npages * PAGE_SIZE > i_size: {} + {} * {PAGE_SIZE} = {end}{wraps} > {} → -EINVAL",
            new.offset, new.npages, file.size
        )];
    }
    out.push(format!(
        "{prep}: offset + npages * PAGE_SIZE <= i_size: {end}{wraps} <= {}",
        file.size
    ));
    let pgoff = new.offset >> PAGE_SHIFT;
    let last = pgoff.wrapping_add(new.npages).wrapping_sub(1);
    let bindings = match Bindings::new(&bindings_of(q, new.fd)) {
        Ok(b) => b,
        Err(e) => return refused(&e),
    };
    if let Some(b) = bindings.overlapping(pgoff, last).next() {
        out.push(format!(
            "{commit}: file pages [{pgoff}, {}) already bound: slot {} holds [{}, {}) → {}",
            pgoff.wrapping_add(new.npages),
            b.id,
            b.pgoff,
            b.pgoff.saturating_add(b.npages),
            en(-i64::from(q.contract.overlap_errno()))
        ));
        return out;
    }
    out.push(format!(
        "{commit}: file pages [{pgoff}, {}) are free → 0, slot {} bound at pgoff {pgoff} (offset >> PAGE_SHIFT)",
        pgoff.wrapping_add(new.npages),
        new.id
    ));
    out
}

/// `classify`: the private-fault rule with the bit it read, then how the
/// fault ends.
pub fn classify(q: &FaultInput) -> Vec<String> {
    let rule = q
        .rule
        .unwrap_or_else(|| FaultRule::for_vm(q.vm_type, q.tdx_shared_bit));
    let whose = if q.rule.is_some() {
        "the given rule".to_owned()
    } else {
        format!("the {:?} VM's rule", q.vm_type)
    };
    let mut out = Vec::new();
    let mut err = q.error_code;
    if err & PFERR_SYNTHETIC_MASK != 0 {
        out.push(format!(
            "hardware reported KVM's synthetic bits {:#x} (PFERR_SYNTHETIC_MASK) → WARN, cleared",
            err & PFERR_SYNTHETIC_MASK
        ));
        err &= !PFERR_SYNTHETIC_MASK;
    }
    let private = rule.is_private(err, q.gpa, q.attr_private);
    let verdict = if private { "private" } else { "shared" };
    let bits = |mask: u64| -> String {
        if mask.count_ones() == 1 {
            let bit = mask.trailing_zeros();
            if mask == PFERR_GUEST_ENC_MASK {
                format!("bit {bit} (PFERR_GUEST_ENC)")
            } else {
                format!("bit {bit}")
            }
        } else {
            format!("mask {mask:#x}")
        }
    };
    let polarity = match rule.private_when {
        PrivateWhen::Set => "private when set",
        PrivateWhen::Clear => "private when clear",
    };
    out.push(match rule.source {
        RuleSource::ErrorCode => format!(
            "{whose}: error code {} {} ({polarity}) → {verdict}",
            bits(rule.mask),
            if err & rule.mask != 0 { "set" } else { "clear" }
        ),
        RuleSource::Gpa => format!(
            "{whose}: GPA {:#x} {} {} ({polarity}) → {verdict}",
            q.gpa,
            bits(rule.mask),
            if q.gpa & rule.mask != 0 {
                "set"
            } else {
                "clear"
            }
        ),
        RuleSource::Attribute => format!(
            "{whose}: KVM_MEMORY_ATTRIBUTE_PRIVATE {}{} → {verdict}",
            if q.attr_private { "set" } else { "clear" },
            if q.attr_private && err & PFERR_RSVD_MASK != 0 {
                ", but a reserved-bit fault (emulated MMIO) is shared"
            } else {
                ""
            }
        ),
        RuleSource::Never => format!("{whose}: no private memory → shared"),
    });
    let d = crate::fault::classify_fault(q);
    out.push(match d.outcome {
        Outcome::Efault => {
            "private and PFERR_RSVD set (private MMIO) → WARN, -EFAULT without an exit".into()
        }
        Outcome::MemoryFault if private != q.attr_private => format!(
            "{verdict} access, but KVM_MEMORY_ATTRIBUTE_PRIVATE is {} → KVM_EXIT_MEMORY_FAULT{}",
            if q.attr_private { "set" } else { "clear" },
            if private { " (flags PRIVATE)" } else { "" }
        ),
        Outcome::MemoryFault => format!(
            "private access to gfn {:#x} with no guest_memfd behind it ({:?} slot) → KVM_EXIT_MEMORY_FAULT (flags PRIVATE)",
            d.gfn, q.slot
        ),
        Outcome::Mmio => "shared access with no memslot → emulated MMIO".into(),
        Outcome::Map => format!(
            "{verdict} access matches the attribute and a {:?} slot backs gfn {:#x} → map it",
            q.slot, d.gfn
        ),
    });
    if private {
        out.push(format!(
            "kvm_mmu_do_page_fault() receives error code {:#x} (PFERR_PRIVATE_ACCESS added)",
            d.error_code
        ));
    }
    out
}

/// `invalidate`: each overlapping binding and the gfns it zaps, with the
/// clamps that made them.
pub fn invalidate(q: &InvalidateQuery) -> Vec<String> {
    let bindings = match Bindings::new(&q.slots) {
        Ok(b) => b,
        Err(e) => return refused(&e),
    };
    if q.start >= q.end {
        return vec![format!(
            "the model refuses the input: start: the file range [{}, {}) is empty",
            q.start, q.end
        )];
    }
    let end = if q.end == u64::MAX {
        "-1ul".to_owned()
    } else {
        q.end.to_string()
    };
    let mut steps = Steps::default();
    for b in bindings.overlapping(q.start, q.end.wrapping_sub(1)) {
        let r = gfn_range_for(b, q.start, q.end);
        steps.push(format!(
            "slot {} (file pages [{}, {}) at gfn {:#x}) overlaps [{}, {end}) → zap gfns [base_gfn + max(pgoff, start) - pgoff, base_gfn + min(pgoff + npages, end) - pgoff) = [{:#x}, {:#x})",
            b.id,
            b.pgoff,
            b.pgoff.saturating_add(b.npages),
            b.base_gfn,
            q.start,
            r.start,
            r.end
        ));
    }
    let mut out = steps.finish("bindings");
    if out.is_empty() {
        out.push(format!(
            "no binding overlaps file pages [{}, {end}) → no zap, no kvm_mmu_invalidate_begin()",
            q.start
        ));
    } else {
        out.push("a zap was made → kvm_mmu_invalidate_begin() and _end() run once each".into());
    }
    out
}

fn level_name(level: i32) -> &'static str {
    if level == PG_LEVEL_2M { "2M" } else { "4K" }
}

/// `prepare`: `sev_gmem_prepare()`'s branch, then the max-level hook's.
pub fn prepare(q: &PrepareQuery) -> Vec<String> {
    if q.max_order < 0 {
        return vec![format!(
            "the model refuses the input: max_order: {} is not a folio order",
            q.max_order
        )];
    }
    let rmp = match Rmp::from_runs(q.snp_enabled, q.max_pfn, &q.rmp) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let mut out = Vec::new();
    if !q.snp_guest {
        return vec![
            "sev_gmem_prepare(): not an SNP guest (!sev_snp_guest(kvm)) → 0, nothing done".into(),
            "sev_private_max_mapping_level(): not an SNP guest → 0 (no limit)".into(),
        ];
    }
    let mut warnings = 0;
    let after_level = match rmp.lookup(q.pfn, &mut warnings) {
        Err(_) if !q.snp_enabled => {
            out.push("sev_gmem_prepare(): snp_lookup_rmpentry() fails: no SNP on the host (-ENODEV) → -ENOENT".into());
            None
        }
        Err(_) => {
            out.push(format!(
                "sev_gmem_prepare(): snp_lookup_rmpentry(pfn {:#x}) fails: pfn >= max_pfn {:#x} (WARN) → -ENOENT",
                q.pfn, q.max_pfn
            ));
            None
        }
        Ok((true, level)) => {
            out.push(format!(
                "sev_gmem_prepare(): pfn {:#x} is already assigned ({} entry) → 0, nothing to do",
                q.pfn,
                level_name(level)
            ));
            Some(level)
        }
        Ok((false, _)) => {
            let head = q.pfn & !(PTRS_PER_PMD - 1);
            let order_ok = max_level_for_order(q.max_order) > PG_LEVEL_4K;
            let assigned_in_region =
                (head..head.saturating_add(PTRS_PER_PMD)).find(|&p| rmp.entry(p).assigned);
            let why = if !order_ok {
                format!("folio order {} < PMD_ORDER {PMD_ORDER} → 4K", q.max_order)
            } else if let Some(p) = assigned_in_region {
                format!(
                    "folio order {} >= PMD_ORDER, but pfn {p:#x} of the 2M region [{head:#x}, {:#x}) is assigned → 4K",
                    q.max_order,
                    head.wrapping_add(PTRS_PER_PMD)
                )
            } else {
                format!(
                    "folio order {} >= PMD_ORDER and the 2M region [{head:#x}, {:#x}) is all shared → 2M at pfn {head:#x}, gfn {:#x}",
                    q.max_order,
                    head.wrapping_add(PTRS_PER_PMD),
                    q.gfn & !(PTRS_PER_PMD - 1)
                )
            };
            out.push(format!(
                "sev_gmem_prepare(): pfn {:#x} is shared; {why}",
                q.pfn
            ));
            let large = order_ok && assigned_in_region.is_none();
            let (pfn, level) = if large {
                (head, PG_LEVEL_2M)
            } else {
                (q.pfn, PG_LEVEL_4K)
            };
            let fits = if large {
                head.checked_add(PTRS_PER_PMD)
                    .is_some_and(|e| e <= q.max_pfn)
            } else {
                q.pfn < q.max_pfn
            };
            if !fits {
                out.push(format!(
                    "rmp_make_private(pfn {pfn:#x}, {}) fails: the entry runs past max_pfn {:#x} → -EINVAL",
                    level_name(level),
                    q.max_pfn
                ));
                None
            } else {
                out.push(format!(
                    "rmp_make_private(pfn {pfn:#x}, gpa {:#x}, {}, asid {}) → 0",
                    if large {
                        (q.gfn & !(PTRS_PER_PMD - 1)) << PAGE_SHIFT
                    } else {
                        q.gfn << PAGE_SHIFT
                    },
                    level_name(level),
                    q.asid
                ));
                Some(level)
            }
        }
    };
    // The max-level hook reads the table after prepare.
    out.push(match crate::ops::prepare(q) {
        Ok(a) => format!(
            "sev_private_max_mapping_level(pfn {:#x}): {} → {}",
            q.pfn,
            match (a.max_level, after_level) {
                (l, _) if l == PG_LEVEL_2M => "the pfn's region is one 2M RMP entry",
                (_, None) => "lookup failed or the pfn is unassigned",
                _ => "the pfn's RMP entry is 4K",
            },
            a.max_level
        ),
        Err(e) => format!("the model refuses the input: {e}"),
    });
    out
}

/// `sev_gmem_invalidate()` over `[start, end)`, one line per pfn that
/// does something, up to [`MAX_STEPS`].
fn rmp_walk(rmp: &Rmp, start: u64, end: u64, steps: &mut Steps) {
    if !rmp.snp_enabled {
        steps.push("sev_gmem_invalidate(): no SNP on the host → nothing".into());
        return;
    }
    let mut rmp = rmp.clone();
    let mut warnings = 0;
    let mut pfn = start;
    let mut shared_from: Option<u64> = None;
    let flush = |from: &mut Option<u64>, to: u64, steps: &mut Steps| {
        if let Some(f) = from.take() {
            steps.push(format!(
                "pfns [{f:#x}, {to:#x}) are shared → looked up, left alone"
            ));
        }
    };
    while pfn < end {
        if pfn >= rmp.max_pfn {
            flush(&mut shared_from, pfn, steps);
            steps.push(format!(
                "pfns [{pfn:#x}, {end:#x}) are past max_pfn {:#x} → each lookup WARNs",
                rmp.max_pfn
            ));
            return;
        }
        let mut step = 1;
        match rmp.lookup(pfn, &mut warnings) {
            Ok((true, level)) => {
                flush(&mut shared_from, pfn, steps);
                let use_2m = rmp_use_2m_update(pfn, end, level);
                let why = if use_2m {
                    step = PTRS_PER_PMD;
                    format!(
                        "2M entry, pfn 2M aligned and end {end:#x} >= pfn + 512 → rmp_make_shared(2M)"
                    )
                } else if level > PG_LEVEL_4K {
                    let reason = if pfn & (PTRS_PER_PMD - 1) != 0 {
                        format!("pfn & 511 = {}", pfn & (PTRS_PER_PMD - 1))
                    } else {
                        format!("end {end:#x} < pfn + 512")
                    };
                    format!(
                        "2M entry not freed whole ({reason}) → PSMASH, then rmp_make_shared(4K)"
                    )
                } else {
                    "4K entry → rmp_make_shared(4K)".into()
                };
                let rc = if level > PG_LEVEL_4K && !use_2m {
                    rmp.psmash(pfn)
                } else {
                    0
                };
                let rc2 = rmp.make_shared(pfn, if use_2m { PG_LEVEL_2M } else { PG_LEVEL_4K });
                let fail = if rc != 0 || rc2 != 0 {
                    " (failed: WARN, move on)"
                } else {
                    ""
                };
                steps.push(format!("pfn {pfn:#x} assigned, {why}{fail}"));
            }
            _ => {
                shared_from.get_or_insert(pfn);
            }
        }
        match pfn.checked_add(step) {
            Some(n) => pfn = n,
            None => break,
        }
    }
    flush(&mut shared_from, pfn.min(end), steps);
}

/// `gmem-invalidate`: what `sev_gmem_invalidate()` does at each pfn.
pub fn rmp_invalidate(q: &RmpInvalidateQuery) -> Vec<String> {
    let rmp = match Rmp::from_runs(q.snp_enabled, q.max_pfn, &q.rmp) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    if q.end > q.start && q.end - q.start > crate::ops::MAX_RMP_INVALIDATE_PFNS {
        return vec!["the model refuses the input: end: too many pfns at once".into()];
    }
    let mut steps = Steps::default();
    if q.start >= q.end {
        steps.push(format!("[{:#x}, {:#x}) is empty → nothing", q.start, q.end));
    }
    rmp_walk(&rmp, q.start, q.end, &mut steps);
    steps.finish("steps")
}

/// `pre-fault`: the argument check, then each arch call's mapping.
pub fn pre_fault(q: &PreFaultInput) -> Vec<String> {
    let sorted = match q.sorted_slots() {
        Ok(s) => s,
        Err(e) => return refused(&e),
    };
    if crate::rules::pre_fault_range_invalid(q.gpa, q.size, q.flags) {
        let why = if q.flags != 0 {
            format!("flags {:#x} != 0", q.flags)
        } else if q.gpa & (PAGE_SIZE - 1) != 0 {
            format!("gpa {:#x} not page aligned", q.gpa)
        } else if q.size & (PAGE_SIZE - 1) != 0 {
            format!("size {:#x} not page aligned", q.size)
        } else {
            format!(
                "gpa + size <= gpa: {:#x} + {:#x} is empty or wraps",
                q.gpa, q.size
            )
        };
        return vec![format!("kvm_vcpu_pre_fault_memory(): {why} → -EINVAL")];
    }
    let mut steps = Steps::default();
    let (mut gpa, mut size, mut calls) = (q.gpa, q.size, 0u32);
    loop {
        if q.interrupt_after.is_some_and(|n| calls >= n) {
            steps.push(format!("a signal is pending after {calls} calls → -EINTR"));
            break;
        }
        if u64::from(calls) >= crate::prefault::MAX_CALLS {
            break;
        }
        let (r, why) = arch_call_why(q, &sorted, gpa, size);
        calls += 1;
        steps.push(format!("gpa {gpa:#x}: {why}"));
        if r <= 0 {
            if r == 0 || r == -i64::from(errno::EIO) {
                steps.push("no progress → WARN, stop".into());
            }
            if size == q.size {
                steps.push(format!("nothing mapped → the ioctl returns {}", en(r)));
            } else {
                steps.push(format!(
                    "{:#x} bytes mapped before it → the ioctl returns 0, range.gpa {gpa:#x}, range.size {size:#x}",
                    q.size - size
                ));
            }
            return steps.finish("calls");
        }
        size -= r as u64;
        gpa = gpa.wrapping_add(r as u64);
        if size == 0 {
            break;
        }
    }
    steps.push(format!(
        "done: range.gpa {gpa:#x}, range.size {size:#x}, {calls} arch calls"
    ));
    steps.finish("calls")
}

/// `kvm_arch_vcpu_pre_fault_memory()` for one step: bytes or -errno, and why.
fn arch_call_why(
    q: &PreFaultInput,
    sorted: &[&crate::prefault::PreFaultSlot],
    gpa: u64,
    size: u64,
) -> (i64, String) {
    if !q.allowed() {
        let why = if !q.tdp {
            "the MMU is not TDP".to_owned()
        } else {
            format!("the {:?} VM is not launched yet", q.vm_type)
        };
        return (
            -i64::from(errno::EOPNOTSUPP),
            format!("{why} (pre_fault_allowed false) → -EOPNOTSUPP"),
        );
    }
    let gfn = gpa >> PAGE_SHIFT;
    let private = q.is_private(gfn);
    let kind = if private { "private" } else { "shared" };
    let at = sorted.partition_point(|s| s.base_gfn <= gfn);
    let slot = at
        .checked_sub(1)
        .map(|i| sorted[i])
        .filter(|s| gfn - s.base_gfn < s.npages);
    let Some(slot) = slot else {
        let e = if private {
            errno::EFAULT
        } else {
            errno::ENOENT
        };
        return (
            -i64::from(e),
            format!(
                "no memslot holds gfn {gfn:#x} ({kind}) → {}",
                en(-i64::from(e))
            ),
        );
    };
    if private && !slot.gmem {
        return (
            -i64::from(errno::EFAULT),
            format!("gfn {gfn:#x} is private but its memslot has no guest_memfd → -EFAULT"),
        );
    }
    let head = gfn & !(PTRS_PER_PMD - 1);
    let uniform = match q.private {
        Some(p) if q.vm_type.has_private_mem() && p.start < p.end => {
            let covers = p.start <= head && head.saturating_add(PTRS_PER_PMD) <= p.end;
            let disjoint = p.end <= head || p.start >= head.saturating_add(PTRS_PER_PMD);
            covers || disjoint
        }
        _ => true,
    };
    let inside = head >= slot.base_gfn && head - slot.base_gfn + PTRS_PER_PMD <= slot.npages;
    let huge = slot.max_level == PageSize::M2 && uniform && inside;
    let why = if huge {
        format!(
            "2M mapping (slot allows 2M, 2M frame at gfn {head:#x} inside the slot and of one attribute)"
        )
    } else if slot.max_level != PageSize::M2 {
        "4K mapping (the slot allows only 4K)".to_owned()
    } else if !inside {
        format!("4K mapping (2M frame at gfn {head:#x} not inside the slot)")
    } else {
        format!("4K mapping (2M frame at gfn {head:#x} mixes private and shared gfns)")
    };
    let page = if huge {
        PTRS_PER_PMD << PAGE_SHIFT
    } else {
        PAGE_SIZE
    };
    let r =
        crate::rules::pre_fault_progress(gpa, size, crate::rules::pre_fault_mapping_end(gpa, page))
            as i64;
    (r, format!("{kind}, {why} → {r:#x} bytes"))
}

/// `get-pfn`: each fault's way through `kvm_gmem_get_pfn()` and whether
/// the prepare hook ran.
pub fn get_pfn(q: &GetPfnQuery) -> Vec<String> {
    let trace = match crate::ops::get_pfn(q) {
        Ok(t) => t,
        Err(e) => return refused(&e),
    };
    let slot = q.slot.and_then(|i| q.bindings.get(i as usize).copied());
    let bindings = match Bindings::new(&q.bindings) {
        Ok(b) => b,
        Err(e) => return refused(&e),
    };
    // (order, prepared) of each folio, by first index, as the faults go.
    let mut folios: std::collections::BTreeMap<u64, (u32, bool, bool)> = q
        .folios
        .iter()
        .map(|f| (f.index, (f.order, f.prepared, f.hwpoison)))
        .collect();
    let mut steps = Steps::default();
    for (k, &gfn) in q.faults.iter().enumerate() {
        let ret = trace.results.get(k).map_or(0, |r| r.ret);
        let Some(b) = slot else {
            steps.push(format!(
                "fault {k} gfn {gfn:#x}: the memslot has no guest_memfd file → -EFAULT"
            ));
            continue;
        };
        let index = gfn.wrapping_sub(b.base_gfn).wrapping_add(b.pgoff);
        let owner = bindings.at(index).map(|o| o.id);
        if owner != Some(b.id) {
            let whose = owner.map_or("no slot's".to_owned(), |o| format!("slot {o}'s"));
            steps.push(format!(
                "fault {k} gfn {gfn:#x}: file page {index} (gfn - base_gfn + pgoff) is {whose}, not slot {}'s → -EIO",
                b.id
            ));
            continue;
        }
        let found = folios
            .range(..=index)
            .next_back()
            .filter(|(s, (o, _, _))| index - **s < 1u64 << (*o).min(63))
            .map(|(s, v)| (*s, *v));
        let (start, (order, prepared, poison)) = match found {
            Some(f) => f,
            None if ret == -errno::ENOMEM => {
                steps.push(format!(
                    "fault {k} gfn {gfn:#x}: file page {index} has no folio and pfn {:#x} is past the host's memory → -ENOMEM",
                    q.pfn_base.wrapping_add(index)
                ));
                continue;
            }
            None => {
                folios.insert(index, (0, false, false));
                (index, (0, false, false))
            }
        };
        if poison {
            steps.push(format!(
                "fault {k} gfn {gfn:#x}: the folio at file page {start} is poisoned → -EHWPOISON"
            ));
            continue;
        }
        let pfn = q.pfn_base + index;
        let hook = match q.profile {
            _ if q.no_hook => {
                "no arch prepare hook on this fault path → nothing prepares".to_owned()
            }
            Profile::Upstream if prepared && !q.every_fault => {
                "the folio is uptodate (prepared before) → no prepare call".to_owned()
            }
            Profile::Upstream if q.every_fault => format!(
                "no prepared-folio state (mainline after 6.18): every fault → kvm_arch_gmem_prepare(gfn {:#x}, pfn {:#x}, order {order}) (the folio's first page)",
                b.base_gfn.wrapping_add(start).wrapping_sub(b.pgoff),
                q.pfn_base + start
            ),
            Profile::Upstream => format!(
                "the folio is not uptodate → kvm_arch_gmem_prepare(gfn {:#x}, pfn {:#x}, order {order}) (the folio's first page)",
                b.base_gfn.wrapping_add(start).wrapping_sub(b.pgoff),
                q.pfn_base + start
            ),
            Profile::GmemSolo2023 => format!(
                "every lookup prepares → kvm_arch_gmem_prepare(gfn {gfn:#x}, pfn {pfn:#x}, order {order})"
            ),
        };
        steps.push(format!(
            "fault {k} gfn {gfn:#x}: file page {index}, folio at {start} (order {order}) → pfn {pfn:#x}; {hook} → {}",
            en(i64::from(ret))
        ));
        if q.profile == Profile::GmemSolo2023 && order > 0 {
            let mo = trace.results.get(k).and_then(|r| r.max_order).unwrap_or(0);
            steps.push(format!(
                "fault {k}: *max_order at most {mo}: the folio's order {order} only when its pages [{start}, {}) lie inside the binding's [{}, {})",
                start.saturating_add(1 << order),
                b.pgoff,
                b.pgoff.saturating_add(b.npages)
            ));
        }
        if ret == 0 && q.profile == Profile::Upstream {
            folios.insert(start, (order, true, false));
        }
    }
    steps.finish("faults")
}

/// `punch-hole`: the zaps, each folio the hole frees, and what the RMP
/// hook does with its pfns.
pub fn punch_hole(q: &PunchQuery) -> Vec<String> {
    if let Err(e) = crate::ops::punch_hole(q) {
        return refused(&e);
    }
    let rmp = match Rmp::from_runs(true, q.max_pfn, &q.rmp) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let start = (q.offset as u64) >> PAGE_SHIFT;
    let end = ((q.offset + q.len) as u64) >> PAGE_SHIFT;
    let mut out = vec![format!(
        "hole: bytes [{:#x}, {:#x}) = file pages [{start}, {end})",
        q.offset,
        q.offset + q.len
    )];
    let zaps = invalidate(&InvalidateQuery {
        slots: q.bindings.clone(),
        start,
        end,
    });
    out.extend(zaps);
    let mut steps = Steps::default();
    let mut rmp = rmp;
    let mut folios: Vec<_> = q.folios.clone();
    folios.sort_by_key(|f| f.index);
    let mut any = false;
    for f in folios {
        let n = 1u64 << f.order.min(63);
        if !(f.index < end && f.index + n > start) {
            continue;
        }
        any = true;
        let (lo, hi) = (f.index.max(start), (f.index + n).min(end));
        let whole = f.index >= start && f.index + n <= end;
        let pfn = q.pfn_base + lo;
        if whole {
            steps.push(format!(
                "folio at file page {} (order {}) lies inside the hole → freed whole: .free_folio → sev_gmem_invalidate(pfns [{pfn:#x}, {:#x}))",
                f.index,
                f.order,
                pfn + (hi - lo)
            ));
        } else {
            steps.push(format!(
                "folio at file page {} (order {}) is partly in the hole → split; pages [{lo}, {hi}) freed 4K each → sev_gmem_invalidate(pfns [{pfn:#x}, {:#x}))",
                f.index,
                f.order,
                pfn + (hi - lo)
            ));
        }
        let mut sub = Steps::default();
        rmp_walk(&rmp, pfn, pfn + (hi - lo), &mut sub);
        for l in sub.finish("steps") {
            steps.push(format!("  {l}"));
        }
        let mut t = crate::rmp::HookTrace::default();
        crate::rmp::sev_gmem_invalidate(&mut rmp, pfn, pfn + (hi - lo), false, &mut t);
    }
    if !any {
        steps.push("no folio in the page cache lies in the hole → no RMP update".into());
    }
    out.extend(steps.finish("folios"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::{Memslot, NewSlot, OpenFile, SlotGmem, kvm_gmem_bind};
    use crate::fault::{SlotKind, VmType};
    use crate::invalidate::Binding;

    fn file(size: u64) -> OpenFile {
        OpenFile {
            fd: 3,
            size,
            gmem: true,
            other_vm: false,
        }
    }

    fn new(offset: u64, npages: u64) -> NewSlot {
        NewSlot {
            id: 1,
            base_gfn: 0x200,
            npages,
            fd: 3,
            offset,
        }
    }

    /// The case: the refusal names the check and its values.
    #[test]
    fn bind_names_the_check_with_its_values() {
        let q = BindInput {
            contract: Default::default(),
            profile: Profile::GmemSolo2023,
            files: vec![file(65536)],
            slots: vec![],
            new: new(49915, 4),
        };
        assert_eq!(kvm_gmem_bind(&q).unwrap().ret, -errno::EINVAL);
        let why = bind(&q);
        assert_eq!(
            why,
            [
                "kvm_gmem_bind(): offset + npages * PAGE_SIZE > i_size: 49915 + 4 * 4096 = 66299 > 65536 → -EINVAL"
            ]
        );
        let ok = BindInput {
            contract: Default::default(),
            new: new(0, 2),
            ..q.clone()
        };
        assert!(
            bind(&ok)
                .last()
                .unwrap()
                .ends_with("bound at pgoff 0 (offset >> PAGE_SHIFT)")
        );
        let overlap = BindInput {
            contract: Default::default(),
            slots: vec![Memslot {
                id: 0,
                base_gfn: 0x100,
                npages: 2,
                gmem: Some(SlotGmem { fd: 3, pgoff: 1 }),
            }],
            new: new(0, 2),
            ..q.clone()
        };
        assert!(
            bind(&overlap)
                .last()
                .unwrap()
                .contains("slot 0 holds [1, 3) → -EINVAL")
        );
        let gpa = BindInput {
            contract: Default::default(),
            profile: Profile::Upstream,
            slots: vec![Memslot {
                id: 0,
                base_gfn: 0x201,
                npages: 2,
                gmem: None,
            }],
            new: new(0, 2),
            ..q
        };
        assert_eq!(kvm_gmem_bind(&gpa).unwrap().ret, -errno::EEXIST);
        assert!(bind(&gpa)[0].contains("overlap memslot 0's [0x201, 0x203) → -EEXIST"));
    }

    /// Each explanation ends in the errno the model returns, over the
    /// exhaustive-style grid the checker uses.
    #[test]
    fn bind_explanations_reach_the_models_errno() {
        let contracts = [
            (Profile::Upstream, BindContract::Bind),
            (Profile::Upstream, BindContract::PrepareCommit),
            (Profile::GmemSolo2023, BindContract::Bind),
        ];
        for (profile, contract) in contracts {
            for size in [0, 4096, 3 * 4096, 4096 + 1] {
                for offset in [0, 1, 4095, 4096, 8192, 1 << 63, u64::MAX - 4095] {
                    for npages in 1..=3 {
                        for fd in [3, 4] {
                            for slot in [None, Some(1u64), Some(0)] {
                                let q = BindInput {
                                    contract,
                                    profile,
                                    files: vec![file(size)],
                                    slots: slot
                                        .map(|p| Memslot {
                                            id: 0,
                                            base_gfn: 0x100,
                                            npages: 1,
                                            gmem: Some(SlotGmem { fd: 3, pgoff: p }),
                                        })
                                        .into_iter()
                                        .collect(),
                                    new: NewSlot {
                                        fd,
                                        ..new(offset, npages)
                                    },
                                };
                                let ret = kvm_gmem_bind(&q).unwrap().ret;
                                let last = bind(&q).pop().unwrap();
                                let want = if ret == 0 {
                                    "→ 0, slot".to_owned()
                                } else {
                                    format!("→ {}", en(i64::from(ret)))
                                };
                                assert!(last.contains(&want), "{q:?}: {last} (model {ret})");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn classify_names_the_bit() {
        let q = FaultInput {
            vm_type: VmType::Snp,
            error_code: PFERR_GUEST_ENC_MASK | 1,
            gpa: 0x5000,
            attr_private: true,
            slot: SlotKind::Gmem,
            tdx_shared_bit: 51,
            rule: None,
        };
        let why = classify(&q);
        assert_eq!(
            why[0],
            "the Snp VM's rule: error code bit 34 (PFERR_GUEST_ENC) set (private when set) → private"
        );
        let t = FaultInput { error_code: 1, ..q };
        assert!(
            classify(&t)[0].ends_with("bit 34 (PFERR_GUEST_ENC) clear (private when set) → shared")
        );
        assert!(classify(&t)[1].contains("KVM_EXIT_MEMORY_FAULT"));
        let tdx = FaultInput {
            vm_type: VmType::Tdx,
            gpa: 1 << 51,
            attr_private: false,
            ..q
        };
        assert!(
            classify(&tdx)[0]
                .contains("GPA 0x8000000000000 bit 51 set (private when clear) → shared")
        );
    }

    #[test]
    fn invalidate_shows_the_clamps() {
        let q = InvalidateQuery {
            slots: vec![Binding {
                id: 1,
                base_gfn: 0x200,
                npages: 4,
                pgoff: 4,
            }],
            start: 2,
            end: 6,
        };
        let why = invalidate(&q);
        assert!(why[0].ends_with("= [0x200, 0x202)"), "{why:?}");
        let none = InvalidateQuery {
            start: 9,
            end: 10,
            ..q
        };
        assert!(invalidate(&none)[0].starts_with("no binding overlaps"));
    }

    fn prepare_q(pfn: u64, order: i32, rmp: Vec<crate::rmp::RmpRun>) -> PrepareQuery {
        PrepareQuery {
            snp_guest: true,
            snp_enabled: true,
            asid: 1,
            pfn,
            gfn: 0x1000 + (pfn & 511),
            max_order: order,
            max_pfn: 2048,
            rmp,
        }
    }

    #[test]
    fn prepare_says_why_4k_or_2m() {
        let why = prepare(&prepare_q(515, 9, vec![]));
        assert!(why[0].contains("all shared → 2M at pfn 0x200"), "{why:?}");
        assert!(why[1].starts_with("rmp_make_private(pfn 0x200"), "{why:?}");
        assert!(why[2].ends_with("→ 2"), "{why:?}");
        let why = prepare(&prepare_q(515, 8, vec![]));
        assert!(why[0].contains("order 8 < PMD_ORDER 9 → 4K"), "{why:?}");
        let run = crate::rmp::RmpRun {
            pfn: 700,
            npages: 1,
            size: PageSize::K4,
            asid: 1,
            gpa: 0,
            immutable: false,
            validated: false,
        };
        let why = prepare(&prepare_q(515, 9, vec![run]));
        assert!(why[0].contains("pfn 0x2bc of the 2M region"), "{why:?}");
        let why = prepare(&prepare_q(700, 9, vec![run]));
        assert!(why[0].contains("already assigned"), "{why:?}");
        let why = prepare(&prepare_q(4096, 0, vec![]));
        assert!(why[0].contains("pfn >= max_pfn"), "{why:?}");
    }

    #[test]
    fn rmp_invalidate_says_psmash_or_2m() {
        let run = crate::rmp::RmpRun {
            pfn: 512,
            npages: 512,
            size: PageSize::M2,
            asid: 1,
            gpa: 0,
            immutable: false,
            validated: false,
        };
        let q = |start, end| RmpInvalidateQuery {
            snp_enabled: true,
            start,
            end,
            max_pfn: 2048,
            rmp: vec![run],
        };
        let why = rmp_invalidate(&q(512, 1024));
        assert!(why[0].contains("→ rmp_make_shared(2M)"), "{why:?}");
        let why = rmp_invalidate(&q(513, 515));
        assert!(why[0].contains("pfn & 511 = 1) → PSMASH"), "{why:?}");
        assert!(
            why[1].starts_with("pfn 0x202 assigned, 4K entry"),
            "{why:?}"
        );
        let why = rmp_invalidate(&q(0, 3));
        assert_eq!(why, ["pfns [0x0, 0x3) are shared → looked up, left alone"]);
    }

    #[test]
    fn pre_fault_ends_in_the_models_answer() {
        use crate::prefault::{GfnSpan, PreFaultSlot, kvm_vcpu_pre_fault_memory};
        let slot = PreFaultSlot {
            base_gfn: 0x1000,
            npages: 513,
            gmem: true,
            max_level: PageSize::M2,
        };
        for (gpa, size, private) in [
            (0x1000u64 << 12, 0x201000u64, None),
            ((0x1000 << 12) + 0x1000, 0x400000, None),
            (
                0x1000 << 12,
                0x1000,
                Some(GfnSpan {
                    start: 0x1001,
                    end: 0x1002,
                }),
            ),
            (0x5000, 0x1000, None),
            (1, 0x1000, None),
        ] {
            let q = PreFaultInput {
                vm_type: VmType::Snp,
                launched: true,
                tdp: true,
                gpa,
                size,
                flags: 0,
                slots: vec![slot],
                private,
                interrupt_after: None,
            };
            let m = kvm_vcpu_pre_fault_memory(&q).unwrap();
            let why = pre_fault(&q);
            let last = why.last().unwrap();
            if m.ret != 0 {
                assert!(last.ends_with(&en(m.ret)), "{why:?} vs {m:?}");
            } else {
                assert!(
                    last.contains(&format!("range.size {:#x}", m.size)),
                    "{why:?} vs {m:?}"
                );
            }
        }
    }
}
