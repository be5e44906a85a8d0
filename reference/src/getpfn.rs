//! `kvm_gmem_get_pfn()`: the fault path into guest_memfd, and where the
//! arch prepare hook runs.
//!
//! A private fault resolves its gfn through the memslot's guest_memfd
//! binding to a file page, finds or allocates the folio there and returns
//! the page's pfn; on the way the memory is *prepared* for the guest
//! (SEV-SNP: made private in the RMP) — on the fault path, before the
//! caller takes `mmu_lock`, which is where the May 2023 thread put it.
//!
//! Per profile:
//!
//! - **upstream** (6.12 `kvm_gmem_get_pfn()` → `kvm_gmem_prepare_folio()`):
//!   the hook runs only for a folio that is not uptodate, with the folio's
//!   first gfn and pfn (index aligned down to the folio order) and the
//!   folio's order; uptodate is set when it succeeds, so a prepared folio
//!   is never prepared again. A WARN fires when the binding's pgoff is not
//!   aligned to the folio.
//! - **upstream, every fault** (mainline after 6.18, `every_fault`): the
//!   prepared-folio state is gone; the hook runs at every fault, with the
//!   folio's first gfn and pfn and its order, as above.
//! - **gmem-solo-2023** (with the series' patch 4a): every successful
//!   lookup calls the hook with the faulting gfn, its page's pfn and the
//!   folio's order; the hook must be idempotent (SNP's returns at once for
//!   an assigned page).
//!
//! Both: no file (unbound slot, file closed) → -EFAULT; the file page is
//! not this memslot's → -EIO (upstream WARNs only when another memslot
//! holds it, 2023 always); no memory for a new folio → -ENOMEM; a poisoned
//! folio → -EHWPOISON. `*pfn` and `*max_order` are written once the folio
//! is found healthy, before the hook runs, so a failing hook leaves them
//! set. `*max_order` is 0 upstream (6.8+ maps guest_memfd at 4K); the 2023
//! trees answered the folio's order, clamped to 0 (v12) when the folio
//! does not lie wholly inside the memslot's binding — an upper bound: a C
//! answering 0 maps at 4K, which is always safe, and the checker accepts
//! it. A missing folio is allocated at order 0 (neither
//! generation asks for huge folios) at pfn `pfn_base + index`.
//!
//! The hook is `kvm_arch_gmem_prepare()` → `kvm_x86_ops.gmem_prepare` =
//! `sev_gmem_prepare()` ([`crate::rmp`]); each call is an event, followed
//! by the RMP updates it makes. It never runs under `mmu_lock`.

use crate::error::InputError;
use crate::invalidate::{Binding, Bindings};
use crate::kernel::errno;
use crate::last_input::LastInput;
use crate::page_cache::PageCache;
use crate::profile::Profile;
use crate::rmp::{HookTrace, PageSize, Rmp, RmpEvent, RmpRun, sev_gmem_prepare};

/// A folio in the file's page cache, with the flags the fault path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct PcFolio {
    /// First file page (2^order aligned).
    pub index: u64,
    /// 0 (4K) or 9 (2M).
    #[cfg_attr(feature = "serde", serde(default))]
    pub order: u32,
    /// Prepared by an earlier fault: uptodate, and its RMP entries are
    /// what `sev_gmem_prepare()` left (one 2M entry for a 2M folio, 4K
    /// entries otherwise; only those inside the RMP table).
    #[cfg_attr(feature = "serde", serde(default))]
    pub prepared: bool,
    /// Memory failure hit it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub hwpoison: bool,
}

/// What one `kvm_gmem_get_pfn()` call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GetPfnResult {
    /// 0 or -errno.
    pub ret: i32,
    /// `*pfn`, if written.
    pub pfn: Option<u64>,
    /// `*max_order`, if written.
    pub max_order: Option<i32>,
}

/// One call of the arch prepare hook (`kvm_x86_ops.gmem_prepare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PrepareCall {
    /// Which fault (index into the query's `faults`).
    pub fault: usize,
    /// gfn argument.
    pub gfn: u64,
    /// pfn argument.
    pub pfn: u64,
    /// max_order argument.
    pub order: i32,
    /// Whether `mmu_lock` was held.
    pub mmu_lock: bool,
    /// What the hook returned.
    pub ret: i32,
}

/// An event of the fault path, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum GetPfnEvent {
    /// The prepare hook was called.
    Prepare {
        /// The call.
        prepare: PrepareCall,
    },
    /// An RMP update the hook made.
    Rmp(RmpEvent),
}

/// What the faults did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GetPfnTrace {
    /// One per fault.
    pub results: Vec<GetPfnResult>,
    /// Hook calls and RMP updates, in order.
    pub events: Vec<GetPfnEvent>,
    /// WARNs that fired.
    pub warnings: u32,
}

/// Most faults one query makes.
pub const MAX_FAULTS: usize = 64;
/// Most folios one query holds.
pub const MAX_FOLIOS: usize = 1 << 12;

/// The scenario: one guest_memfd, its bindings, its page cache, faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetPfnScenario<'a> {
    /// Generation.
    pub profile: Profile,
    /// SNP guest on an SNP host (else the hook returns 0 at once).
    pub snp: bool,
    /// The guest's ASID.
    pub asid: u32,
    /// RMP table size: lookups at or above fail.
    pub max_pfn: u64,
    /// Pfns the host has: a new folio past them cannot be allocated.
    pub nr_pfns: u64,
    /// The file's bindings.
    pub bindings: &'a [Binding],
    /// The faulting memslot: `bindings[slot]`, or None for a guest_memfd
    /// memslot whose file is gone.
    pub slot: Option<usize>,
    /// Pfn of file page 0.
    pub pfn_base: u64,
    /// The page cache before.
    pub folios: &'a [PcFolio],
    /// gfns faulted, in order.
    pub faults: &'a [u64],
    /// The RMP before, when given: it replaces what the prepared folios'
    /// prepare would have left (so any per-page state can meet a fault).
    pub rmp: Option<&'a [RmpRun]>,
    /// Upstream without a prepared-folio state (mainline after 6.18): the
    /// hook runs at every fault, still at the folio's head.
    pub every_fault: bool,
    /// No arch prepare hook on the fault path: nothing is prepared.
    pub no_hook: bool,
}

/// What [`kvm_gmem_get_pfn_with`] answers in, reused from one scenario to
/// the next (the checker runs millions): the trace, and the storage behind
/// the bindings, the page cache and the table, so a scenario allocates
/// nothing once they have grown.
#[derive(Debug, Default)]
pub struct GetPfnScratch {
    /// The answer of the last scenario that ran.
    pub trace: GetPfnTrace,
    bindings: Bindings,
    folios: PageCache<(bool, bool)>,
    built: Built,
    rmp: Rmp,
    loader: crate::rmp::RmpLoader,
    hook: HookTrace,
}

/// What a scenario's page cache is built from.
#[derive(Debug, Clone, Copy)]
struct FolioKey<'a> {
    folios: &'a [PcFolio],
    /// The scalars that go with them.
    with: FolioScalars,
}

/// A [`FolioKey`]'s scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FolioScalars {
    pfn_base: u64,
    nr_pfns: u64,
    max_pfn: u64,
    asid: u32,
    /// Whether the RMP is the prepared folios' (no table given).
    derive_runs: bool,
}

/// The page cache and prepared runs of the last [`FolioKey`] built.
#[derive(Debug, Default)]
struct Built {
    input: LastInput<PcFolio, FolioScalars>,
    folios: PageCache<(bool, bool)>,
    runs: Vec<RmpRun>,
}

/// The page cache of `s`'s folios, checked ((prepared, hwpoison) by first
/// index), and the RMP runs the prepared ones left when the table is
/// theirs.
fn build_page_cache(
    key: &FolioKey<'_>,
    folios: &mut PageCache<(bool, bool)>,
    runs: &mut Vec<RmpRun>,
) -> Result<(), InputError> {
    let s = &key.with;
    folios.clear();
    runs.clear();
    for (i, f) in key.folios.iter().enumerate() {
        let n = 1u64 << f.order.min(63);
        let end = s
            .pfn_base
            .checked_add(f.index)
            .and_then(|p| p.checked_add(n));
        if (f.order != 0 && f.order != 9)
            || f.index % n != 0
            || end.is_none_or(|e| e > s.nr_pfns)
            || (s.pfn_base + f.index) % n != 0
        {
            return Err(InputError::new(
                format!("folios[{i}]"),
                "order 0 or 9, index and pfn aligned to it, pfns below nr_pfns",
            ));
        }
        if !folios.add(f.index, f.order, (f.prepared, f.hwpoison)) {
            return Err(InputError::new(
                format!("folios[{i}]"),
                "overlaps another folio",
            ));
        }
        let pfn = s.pfn_base + f.index;
        if s.derive_runs && f.prepared && pfn + n <= s.max_pfn {
            runs.push(RmpRun {
                pfn,
                npages: n,
                size: if f.order == 9 {
                    PageSize::M2
                } else {
                    PageSize::K4
                },
                asid: s.asid,
                gpa: 0,
                immutable: false,
                validated: false,
            });
        }
    }
    Ok(())
}

/// Runs the faults.
pub fn kvm_gmem_get_pfn(s: &GetPfnScenario<'_>) -> Result<GetPfnTrace, InputError> {
    let mut sc = GetPfnScratch::default();
    kvm_gmem_get_pfn_with(&mut sc, s)?;
    Ok(sc.trace)
}

/// [`kvm_gmem_get_pfn`] into `sc`: the answer is `sc.trace` (left
/// unspecified on an error).
pub fn kvm_gmem_get_pfn_with(
    sc: &mut GetPfnScratch,
    s: &GetPfnScenario<'_>,
) -> Result<(), InputError> {
    sc.bindings.load(s.bindings)?;
    let bindings = &sc.bindings;
    let slot = match s.slot {
        Some(i) => Some(*s.bindings.get(i).ok_or_else(|| {
            InputError::new(
                "slot",
                format!("no bindings[{i}]: {} bindings", s.bindings.len()),
            )
        })?),
        None => None,
    };
    if s.faults.len() > MAX_FAULTS {
        return Err(InputError::new(
            "faults",
            format!("at most {MAX_FAULTS} faults"),
        ));
    }
    if s.folios.len() > MAX_FOLIOS {
        return Err(InputError::new(
            "folios",
            format!("at most {MAX_FOLIOS} folios"),
        ));
    }
    // (prepared, hwpoison) by first index, and the runs prepared folios
    // left; the same folios again (the exhaustive bound keeps a page
    // cache for many faults) are a copy of what they gave.
    let key = FolioKey {
        folios: s.folios,
        with: FolioScalars {
            pfn_base: s.pfn_base,
            nr_pfns: s.nr_pfns,
            max_pfn: s.max_pfn,
            asid: s.asid,
            derive_runs: s.rmp.is_none(),
        },
    };
    let built = &mut sc.built;
    if !built.input.is(key.folios, key.with) {
        built.input.forget();
        build_page_cache(&key, &mut built.folios, &mut built.runs)?;
        built.input.set(key.folios, key.with);
    }
    let folios = &mut sc.folios;
    folios.copy_from(&sc.built.folios);
    let runs = &sc.built.runs;
    let rmp = &mut sc.rmp;
    sc.loader
        .load(rmp, s.snp, s.max_pfn, s.rmp.unwrap_or(runs))?;
    let out = &mut sc.trace;
    out.results.clear();
    out.events.clear();
    out.warnings = 0;
    for (k, &gfn) in s.faults.iter().enumerate() {
        let mut result = GetPfnResult {
            ret: 0,
            pfn: None,
            max_order: None,
        };
        // kvm_gmem_get_file(): NULL for an unbound slot or a closed file.
        let Some(b) = slot else {
            result.ret = -errno::EFAULT;
            out.results.push(result);
            continue;
        };
        let index = gfn.wrapping_sub(b.base_gfn).wrapping_add(b.pgoff);
        let owner = bindings.at(index);
        if owner.map(|o| o.id) != Some(b.id) {
            // 6.12 WARNs only when another memslot holds the page.
            if s.profile == Profile::GmemSolo2023 || owner.is_some() {
                out.warnings += 1;
            }
            result.ret = -errno::EIO;
            out.results.push(result);
            continue;
        }
        let (start, order, (prepared, hwpoison)) = match folios.holding(index) {
            Some(f) => f,
            None => {
                let fits = s.pfn_base.checked_add(index).is_some_and(|p| p < s.nr_pfns);
                if !fits {
                    result.ret = -errno::ENOMEM;
                    out.results.push(result);
                    continue;
                }
                folios.insert(index, 0, (false, false));
                (index, 0, (false, false))
            }
        };
        if hwpoison {
            result.ret = -errno::EHWPOISON;
            out.results.push(result);
            continue;
        }
        let pfn = s.pfn_base + index;
        result.pfn = Some(pfn);
        result.max_order = Some(match s.profile {
            // 6.8+: no huge mappings from guest_memfd yet.
            Profile::Upstream => 0,
            // The 2023 trees answered the folio's order (compound_order()),
            // clamped from v12 on so a huge mapping never leaves the
            // binding: the largest order allowed is the folio's when the
            // whole folio lies inside this memslot's file range.
            Profile::GmemSolo2023 => {
                let n = 1u64 << order;
                let inside = start >= b.pgoff
                    && start - b.pgoff <= b.npages
                    && b.npages - (start - b.pgoff) >= n;
                if inside { order as i32 } else { 0 }
            }
        });
        let call = match s.profile {
            _ if s.no_hook => None,
            Profile::Upstream if prepared && !s.every_fault => None,
            Profile::Upstream => {
                if b.pgoff % (1u64 << order) != 0 {
                    out.warnings += 1;
                }
                // The folio's first page (folios are aligned to their order).
                let head_gfn = b.base_gfn.wrapping_add(start).wrapping_sub(b.pgoff);
                Some((head_gfn, s.pfn_base + start))
            }
            Profile::GmemSolo2023 => Some((gfn, pfn)),
        };
        if let Some((cgfn, cpfn)) = call {
            let at = out.events.len();
            out.events.push(GetPfnEvent::Prepare {
                prepare: PrepareCall {
                    fault: k,
                    gfn: cgfn,
                    pfn: cpfn,
                    order: order as i32,
                    mmu_lock: false,
                    ret: 0,
                },
            });
            let t = &mut sc.hook;
            t.events.clear();
            t.warnings = 0;
            let ret = sev_gmem_prepare(rmp, s.snp, s.asid, cpfn, cgfn, order as i32, false, t);
            if let GetPfnEvent::Prepare { prepare } = &mut out.events[at] {
                prepare.ret = ret;
            }
            out.warnings += t.warnings;
            out.events
                .extend(t.events.iter().copied().map(GetPfnEvent::Rmp));
            result.ret = ret;
            if ret == 0 && s.profile == Profile::Upstream {
                folios.insert(start, order, (true, false));
            }
        }
        out.results.push(result);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_scratch_answers_as_a_fresh_one() {
        // The scratch keeps the last bindings and RMP input to reuse them:
        // every answer, in any order of scenarios (the same again, another,
        // a refused one), must be what a fresh call gives.
        let b = |id, base_gfn, npages, pgoff| Binding {
            id,
            base_gfn,
            npages,
            pgoff,
        };
        let folio = |index, order, prepared| PcFolio {
            index,
            order,
            prepared,
            hwpoison: false,
        };
        let one = [b(0, 0x800, 1024, 0)];
        let two = [b(1, 0x4000, 8, 520), b(0, 0x800, 300, 0)];
        let clash = [b(0, 0x800, 8, 0), b(0, 0x900, 8, 8)];
        let big = [folio(0, 9, true)];
        let small = [folio(1, 0, false), folio(3, 0, true)];
        let overlap = [folio(0, 9, false), folio(3, 0, false)];
        let given = [RmpRun {
            pfn: 0x201,
            npages: 1,
            size: PageSize::K4,
            asid: 1,
            gpa: 0,
            immutable: true,
            validated: false,
        }];
        let base = GetPfnScenario {
            profile: Profile::Upstream,
            snp: true,
            asid: 1,
            max_pfn: 4096,
            nr_pfns: 4096,
            bindings: &one,
            slot: Some(0),
            pfn_base: 0x200,
            folios: &big,
            faults: &[0x801, 0x803],
            rmp: None,
            every_fault: false,
            no_hook: false,
        };
        let solo = GetPfnScenario {
            profile: Profile::GmemSolo2023,
            ..base.clone()
        };
        // Each after one it differs from in one thing that builds the page
        // cache (the folios, the pfn base, the pfns there are, the table's
        // size, the ASID the prepared entries carry, a table given or not),
        // and a refused one between two of the same. (The ASID shows in no
        // answer, only in the table the model keeps.)
        let scenarios = [
            base.clone(),
            base.clone(),
            GetPfnScenario {
                folios: &small,
                ..base.clone()
            },
            GetPfnScenario {
                bindings: &two,
                slot: Some(1),
                faults: &[0x4000, 0x801],
                folios: &small,
                ..base.clone()
            },
            GetPfnScenario {
                bindings: &clash,
                ..base.clone()
            },
            GetPfnScenario {
                folios: &overlap,
                ..base.clone()
            },
            base.clone(),
            GetPfnScenario {
                folios: &small,
                rmp: Some(&given),
                ..base.clone()
            },
            GetPfnScenario {
                folios: &small,
                rmp: Some(&given),
                profile: Profile::GmemSolo2023,
                ..base.clone()
            },
            GetPfnScenario {
                bindings: &two,
                slot: Some(1),
                ..base.clone()
            },
            base.clone(),
            GetPfnScenario {
                nr_pfns: 0x300,
                ..base.clone()
            },
            base.clone(),
            solo.clone(),
            GetPfnScenario {
                pfn_base: 0x400,
                ..solo.clone()
            },
            solo.clone(),
            GetPfnScenario {
                asid: 2,
                ..solo.clone()
            },
            solo.clone(),
            GetPfnScenario {
                max_pfn: 0x300,
                ..solo.clone()
            },
            GetPfnScenario {
                folios: &small,
                ..solo.clone()
            },
            GetPfnScenario {
                rmp: Some(&[]),
                ..solo.clone()
            },
            solo.clone(),
            base.clone(),
        ];
        let mut sc = GetPfnScratch::default();
        for s in &scenarios {
            let reused = kvm_gmem_get_pfn_with(&mut sc, s).map(|()| sc.trace.clone());
            assert_eq!(reused, kvm_gmem_get_pfn(s), "{s:?}");
        }
        // The refused ones are refused: the test sees both kinds.
        for refused in [4, 5, 11] {
            assert!(kvm_gmem_get_pfn(&scenarios[refused]).is_err());
        }
    }
}
