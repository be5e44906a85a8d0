//! The model never panics, on any input: every operation is fed seeded
//! random inputs biased towards the edges of u64 (0, 1, page and 2M
//! boundaries, 2^63, 2^64 - 1 and their neighbours). Tests build with
//! overflow checks on, so an unmirrored kernel wrap-around would panic here.

use gmem_reference::binding::{
    BindContract, BindInput, Memslot, NewSlot, OpenFile, SlotGmem, kvm_gmem_bind,
};
use gmem_reference::explain;
use gmem_reference::fallocate::{FallocateInput, kvm_gmem_fallocate};
use gmem_reference::fault::{
    FaultInput, FaultRule, PrivateWhen, RuleSource, SlotKind, VmType, classify_fault,
};
use gmem_reference::invalidate::{Binding, Bindings, kvm_gmem_invalidate};
use gmem_reference::lifecycle::{Scenario, SharedPolicy, Step, run};
use gmem_reference::prefault::{GfnSpan, PreFaultInput, PreFaultSlot, kvm_vcpu_pre_fault_memory};
use gmem_reference::profile::Profile;
use gmem_reference::rmp::{
    HookTrace, PageSize, Rmp, RmpRun, sev_gmem_invalidate, sev_gmem_prepare,
    sev_private_max_mapping_level,
};

const ROUNDS: usize = 20_000;

/// SplitMix64: small, seeded, good enough to spread inputs.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A u64 that is often an edge value.
    fn u64(&mut self) -> u64 {
        const EDGES: [u64; 12] = [
            0,
            1,
            2,
            511,
            512,
            4095,
            4096,
            1 << 32,
            1 << 52,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ];
        match self.next() % 4 {
            0 => EDGES[(self.next() % EDGES.len() as u64) as usize],
            1 => EDGES[(self.next() % EDGES.len() as u64) as usize]
                .wrapping_add(self.next() % 9)
                .wrapping_sub(4),
            2 => self.next() % 64,
            _ => self.next(),
        }
    }

    fn small(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Disjoint bindings in file order, starting near an edge value, so most
/// layouts are valid and the interesting arithmetic actually runs.
fn valid_layout(g: &mut Gen) -> Vec<Binding> {
    let n = 1 + g.small(3);
    let mut next = g.u64();
    let mut out = Vec::new();
    for i in 0..n {
        let npages = 1 + g.small(8);
        let Some(last) = next.checked_add(npages - 1) else {
            break;
        };
        out.push(Binding {
            id: i as u16,
            base_gfn: g.u64(),
            npages,
            pgoff: next,
        });
        match last.checked_add(1 + g.small(3)) {
            Some(n) => next = n,
            None => break,
        }
    }
    out
}

#[test]
fn invalidate_never_panics_and_keeps_its_properties() {
    let mut g = Gen(1);
    let mut nonempty = 0;
    for round in 0..ROUNDS {
        let slots: Vec<Binding> = if round % 4 == 0 {
            (0..g.small(4))
                .map(|i| Binding {
                    id: i as u16,
                    base_gfn: g.u64(),
                    npages: g.u64(),
                    pgoff: g.u64(),
                })
                .collect()
        } else {
            valid_layout(&mut g)
        };
        let Ok(b) = Bindings::new(&slots) else {
            continue;
        };
        // Ranges start and end near binding boundaries, or anywhere.
        let near = |g: &mut Gen| match slots.get(g.small(slots.len().max(1) as u64) as usize) {
            Some(s) if g.bool() => s.pgoff.wrapping_add(g.small(10)).wrapping_sub(2),
            _ => g.u64(),
        };
        let (start, end) = (near(&mut g), near(&mut g));
        let _ = explain::invalidate(&gmem_reference::ops::InvalidateQuery {
            slots: slots.clone(),
            start,
            end,
        });
        let Ok(inv) = kvm_gmem_invalidate(&b, start, end) else {
            assert!(start >= end, "only empty ranges are refused");
            continue;
        };
        let overlapping: Vec<&Binding> = slots
            .iter()
            .filter(|s| s.pgoff < end && start <= s.pgoff + (s.npages - 1))
            .collect();
        assert_eq!(
            inv.ranges.len(),
            overlapping.len(),
            "one zap per overlapping binding"
        );
        assert_eq!(
            inv.mmu_invalidate,
            !inv.ranges.is_empty(),
            "begin iff some binding overlaps"
        );
        for r in &inv.ranges {
            let s = slots
                .iter()
                .find(|s| s.id == r.slot)
                .expect("zap names a binding");
            // Offsets from base_gfn, modulo 2^64 as the kernel computes them.
            let (lo, hi) = (
                r.start.wrapping_sub(s.base_gfn),
                r.end.wrapping_sub(s.base_gfn),
            );
            assert!(lo < hi && hi <= s.npages, "zap {r:?} inside {s:?}");
            assert_eq!(lo, start.max(s.pgoff) - s.pgoff);
        }
        nonempty += usize::from(inv.mmu_invalidate);
    }
    assert!(
        nonempty > ROUNDS / 4,
        "only {nonempty} rounds zapped anything"
    );
}

#[test]
fn classify_never_panics() {
    let mut g = Gen(2);
    for _ in 0..ROUNDS {
        let rule = g.bool().then(|| FaultRule {
            source: [
                RuleSource::ErrorCode,
                RuleSource::Gpa,
                RuleSource::Attribute,
                RuleSource::Never,
            ][g.small(4) as usize],
            mask: g.u64(),
            private_when: if g.bool() {
                PrivateWhen::Set
            } else {
                PrivateWhen::Clear
            },
        });
        let q = FaultInput {
            vm_type: VmType::ALL[g.small(6) as usize],
            error_code: g.u64(),
            gpa: g.u64(),
            attr_private: g.bool(),
            slot: [SlotKind::Gmem, SlotKind::Plain, SlotKind::None][g.small(3) as usize],
            tdx_shared_bit: g.next() as u8,
            rule,
        };
        let _ = classify_fault(&q);
        let _ = explain::classify(&q);
    }
}

fn random_runs(g: &mut Gen, max_pfn: u64) -> Vec<RmpRun> {
    (0..g.small(3))
        .map(|_| RmpRun {
            pfn: if g.bool() {
                g.u64()
            } else {
                g.small(max_pfn.max(1))
            },
            npages: g.small(600),
            size: if g.bool() { PageSize::M2 } else { PageSize::K4 },
            asid: g.next() as u32,
            gpa: g.u64(),
            immutable: g.bool(),
            validated: g.bool(),
        })
        .collect()
}

#[test]
fn rmp_hooks_never_panic() {
    let mut g = Gen(3);
    for _ in 0..ROUNDS / 10 {
        let max_pfn = if g.bool() { g.small(4096) } else { g.u64() };
        let Ok(mut rmp) = Rmp::from_runs(g.bool(), max_pfn, &random_runs(&mut g, max_pfn)) else {
            continue;
        };
        let mut t = HookTrace::default();
        let pfn = if g.bool() {
            g.u64()
        } else {
            g.small(max_pfn.max(1))
        };
        let _ = sev_gmem_prepare(
            &mut rmp,
            g.bool(),
            g.next() as u32,
            pfn,
            g.u64(),
            g.next() as i32,
            g.bool(),
            &mut t,
        );
        let _ = sev_private_max_mapping_level(&rmp, g.bool(), g.u64(), &mut t);
        // Bounded walk: start anywhere (including near 2^64), at most 2048 pfns.
        let start = g.u64();
        sev_gmem_invalidate(
            &mut rmp,
            start,
            start.saturating_add(g.small(2048)),
            g.bool(),
            &mut t,
        );
        let _ = rmp.runs();
    }
}

#[test]
fn pre_fault_never_panics() {
    let mut g = Gen(4);
    for _ in 0..ROUNDS {
        let slots = (0..g.small(3))
            .map(|_| PreFaultSlot {
                base_gfn: g.u64(),
                npages: g.u64(),
                gmem: g.bool(),
                max_level: if g.bool() { PageSize::M2 } else { PageSize::K4 },
            })
            .collect();
        // Keep sizes small enough that the walk itself stays quick.
        let size = if g.bool() { g.u64() } else { g.small(1 << 22) };
        let q = PreFaultInput {
            vm_type: VmType::ALL[g.small(6) as usize],
            launched: g.bool(),
            tdp: g.bool(),
            gpa: g.u64(),
            size,
            flags: if g.bool() { 0 } else { g.u64() },
            slots,
            private: g.bool().then(|| GfnSpan {
                start: g.u64(),
                end: g.u64(),
            }),
            interrupt_after: g.bool().then(|| g.next() as u32 % 4),
        };
        let _ = kvm_vcpu_pre_fault_memory(&q);
        let _ = explain::pre_fault(&q);
    }
}

#[test]
fn bind_and_fallocate_never_panic() {
    let mut g = Gen(5);
    for _ in 0..ROUNDS {
        let files = (0..g.small(3))
            .map(|i| OpenFile {
                fd: i as u32 + 3,
                size: g.u64(),
                gmem: g.bool(),
                other_vm: g.bool(),
            })
            .collect();
        let slots = (0..g.small(3))
            .map(|i| Memslot {
                id: i as u16,
                base_gfn: g.u64(),
                npages: g.u64(),
                gmem: g.bool().then(|| SlotGmem {
                    fd: 3,
                    pgoff: g.u64(),
                }),
            })
            .collect();
        let q = BindInput {
            // Either contract with either profile: the 2023 one with
            // prepare-commit is refused, never a panic.
            contract: if g.bool() {
                BindContract::PrepareCommit
            } else {
                BindContract::Bind
            },
            profile: if g.bool() {
                Profile::Upstream
            } else {
                Profile::GmemSolo2023
            },
            files,
            slots,
            new: NewSlot {
                id: 9,
                base_gfn: g.u64(),
                npages: g.u64(),
                fd: g.small(6) as u32,
                offset: g.u64(),
            },
        };
        let _ = kvm_gmem_bind(&q);
        let _ = explain::bind(&q);
        let _ = kvm_gmem_fallocate(&FallocateInput {
            mode: g.next() as u32 % 8,
            offset: g.u64() as i64,
            len: g.u64() as i64,
            size: g.u64() as i64,
        });
    }
}

#[test]
fn lifecycle_never_panics() {
    let mut g = Gen(6);
    for _ in 0..ROUNDS / 20 {
        let file_pages = if g.bool() { g.small(2048) } else { g.u64() };
        let bindings = (0..g.small(3))
            .map(|i| Binding {
                id: i as u16,
                base_gfn: g.u64(),
                npages: g.small(1024),
                pgoff: g.small(2048),
            })
            .collect();
        let steps = (0..g.small(6))
            .map(|_| match g.small(4) {
                0 => Step::Fault { gfn: g.u64() },
                1 => Step::SetAttributes {
                    start: g.u64(),
                    end: g.u64(),
                    private: g.bool(),
                },
                2 => Step::PunchHole {
                    start: g.u64(),
                    end: g.u64(),
                },
                _ => Step::Release,
            })
            .collect();
        let _ = run(&Scenario {
            policy: if g.bool() {
                SharedPolicy::WhenFreed
            } else {
                SharedPolicy::AtConversion
            },
            asid: 1,
            file_pages,
            pfn_base: if g.bool() { 512 * g.small(8) } else { g.u64() },
            folio_order: if g.bool() { 9 } else { 0 },
            bindings,
            steps,
        });
    }
}

#[test]
fn get_pfn_never_panics() {
    use gmem_reference::getpfn::{GetPfnScenario, PcFolio, kvm_gmem_get_pfn};
    let mut g = Gen(7);
    for _ in 0..ROUNDS / 10 {
        let bindings = valid_layout(&mut g);
        let folios: Vec<PcFolio> = (0..g.small(5))
            .map(|_| PcFolio {
                index: if g.bool() { 512 * g.small(4) } else { g.u64() },
                order: if g.bool() { 9 } else { g.small(12) as u32 },
                prepared: g.bool(),
                hwpoison: g.small(5) == 0,
            })
            .collect();
        let faults: Vec<u64> = (0..g.small(5)).map(|_| g.u64()).collect();
        let slot =
            (!bindings.is_empty() && g.bool()).then(|| g.small(bindings.len() as u64 + 1) as usize);
        let max_pfn = if g.bool() { g.small(4096) } else { g.u64() };
        let rmp = g.bool().then(|| random_runs(&mut g, max_pfn));
        let _ = kvm_gmem_get_pfn(&GetPfnScenario {
            profile: if g.bool() {
                Profile::Upstream
            } else {
                Profile::GmemSolo2023
            },
            snp: g.bool(),
            asid: g.next() as u32,
            max_pfn,
            nr_pfns: if g.bool() { 2048 } else { g.u64() },
            bindings: &bindings,
            slot,
            pfn_base: if g.bool() { 512 * g.small(4) } else { g.u64() },
            folios: &folios,
            faults: &faults,
            rmp: rmp.as_deref(),
            every_fault: g.bool(),
            no_hook: g.bool(),
        });
    }
}

/// The explanations of the RMP, punch-hole and get-pfn queries, which
/// re-run the hooks' decisions on inputs the queries accept or refuse.
#[test]
fn explanations_never_panic() {
    use gmem_reference::getpfn::PcFolio;
    use gmem_reference::lifecycle::Folio;
    use gmem_reference::ops::{GetPfnQuery, PrepareQuery, PunchQuery, RmpInvalidateQuery};
    let mut g = Gen(8);
    for _ in 0..ROUNDS / 10 {
        let max_pfn = if g.bool() { g.small(4096) } else { g.u64() };
        let rmp = random_runs(&mut g, max_pfn);
        let pfn = if g.bool() {
            g.u64()
        } else {
            g.small(max_pfn.max(1))
        };
        let _ = explain::prepare(&PrepareQuery {
            snp_guest: g.bool(),
            snp_enabled: g.bool(),
            asid: g.next() as u32,
            pfn,
            gfn: g.u64(),
            max_order: g.next() as i32 % 12,
            max_pfn,
            rmp: rmp.clone(),
        });
        let start = if g.bool() { g.u64() } else { g.small(4096) };
        let _ = explain::rmp_invalidate(&RmpInvalidateQuery {
            snp_enabled: g.bool(),
            start,
            end: start.saturating_add(g.small(2048)),
            max_pfn,
            rmp: rmp.clone(),
        });
        let bindings = valid_layout(&mut g);
        let page = |g: &mut Gen| (g.small(1100) * 4096) as i64;
        let _ = explain::punch_hole(&PunchQuery {
            bindings: bindings.clone(),
            pfn_base: if g.bool() { 512 * g.small(4) } else { g.u64() },
            folios: (0..g.small(3))
                .map(|_| Folio {
                    index: if g.bool() {
                        512 * g.small(2)
                    } else {
                        g.small(1024)
                    },
                    order: if g.bool() { 9 } else { 0 },
                })
                .collect(),
            offset: if g.bool() {
                page(&mut g)
            } else {
                g.u64() as i64
            },
            len: if g.bool() {
                page(&mut g)
            } else {
                g.u64() as i64
            },
            max_pfn,
            rmp,
        });
        let folios: Vec<PcFolio> = (0..g.small(4))
            .map(|_| PcFolio {
                index: if g.bool() { 512 * g.small(4) } else { g.u64() },
                order: if g.bool() { 9 } else { 0 },
                prepared: g.bool(),
                hwpoison: g.small(5) == 0,
            })
            .collect();
        let _ = explain::get_pfn(&GetPfnQuery {
            profile: if g.bool() {
                Profile::Upstream
            } else {
                Profile::GmemSolo2023
            },
            snp: g.bool(),
            asid: 1,
            max_pfn,
            nr_pfns: if g.bool() { 2048 } else { g.u64() },
            slot: (!bindings.is_empty() && g.bool())
                .then(|| g.small(bindings.len() as u64 + 1) as u32),
            bindings,
            pfn_base: if g.bool() { 512 * g.small(4) } else { g.u64() },
            folios,
            faults: (0..g.small(5)).map(|_| g.u64()).collect(),
            rmp: g.bool().then(|| random_runs(&mut g, max_pfn)),
            every_fault: g.bool(),
            no_hook: g.bool(),
        });
    }
}
