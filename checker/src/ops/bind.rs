//! `bind`: kvm_gmem_bind(), or 7.2's kvm_gmem_prepare_memory_region() +
//! kvm_gmem_commit_memory_region() called as the memslot code calls them.
//!
//! The C side is the guest_memfd code alone; the memslot checks that precede
//! it in `__kvm_set_memory_region()` (GPA overlap → -EEXIST, upstream's
//! offset alignment and wrap checks) are generic KVM code no patch touches,
//! so cases they decide are model-only. Cases of the other profile are
//! model-only too: the profile is a property of the C. Exhaustive bound: a
//! 4-page file with up to one existing binding, new bindings of 1 to 3 pages
//! at every offset in {0, 1, 4K-1, 4K, ..., 5 pages}, and each kind of fd.

use serde_json::{Value, json};

use super::{
    CaseOps, Ctx, Operation, Outcome, Rng, Source, Split, cases_of, nth_case_json, run_cases,
    smaller_numbers, time_split, to_json,
};
use crate::abi;
use crate::compile::COp;
use crate::library::Library;
use gmem_reference::Profile;
use gmem_reference::binding::{
    BindContract, BindInput, Memslot, NewSlot, OpenFile, SlotGmem, bindings_of, kvm_gmem_bind,
    memslot_checks,
};
use gmem_reference::kernel::PAGE_SIZE;

/// The registry entry.
pub const OPERATION: Operation = Operation {
    name: "bind",
    cop: COp::Bind,
    run,
    case_json,
    explain,
    picture,
};

/// The file in bytes: its pages up to `i_size` (the end marked), the
/// file's existing bindings, and the new binding — drawn red past the end
/// of the file — with the model's and the C's answers.
fn picture(c: &super::Counterexample) -> Option<String> {
    use super::picture::{self, Axis, C_BLUE, MISSING_RED, MODEL_GREEN, rect, text};
    let q: BindInput = serde_json::from_value(c.input.clone()).ok()?;
    let size = q.files.iter().find(|f| f.fd == q.new.fd).map(|f| f.size);
    let existing = bindings_of(&q, q.new.fd);
    let new_end = q
        .new
        .offset
        .saturating_add(q.new.npages.saturating_mul(PAGE_SIZE));
    let far = existing
        .iter()
        .map(|b| b.pgoff.saturating_add(b.npages).saturating_mul(PAGE_SIZE))
        .chain([size.unwrap_or(0), new_end])
        .max()
        .unwrap_or(PAGE_SIZE);
    let hi = far.saturating_add(far / 8).max(PAGE_SIZE);
    let ax = Axis {
        lo: 0,
        hi,
        x0: 150.0,
        w: 720.0,
    };
    let mut s = picture::open("bind", 900, 230);
    ax.ticks_by(&mut s, 18.0, PAGE_SIZE, |b| {
        format!("page {}", b / PAGE_SIZE)
    });
    for (i, r) in ["file", "bindings", "new binding"].iter().enumerate() {
        text(&mut s, 8.0, 50.0 + i as f64 * 40.0, "#222", r);
    }
    match size {
        Some(size) => {
            let pages = size.div_ceil(PAGE_SIZE).min(4096);
            for p in 0..pages {
                let (a, b) = (p * PAGE_SIZE, ((p + 1) * PAGE_SIZE).min(size));
                rect(
                    &mut s,
                    "file-page",
                    ax.x(a),
                    32.0,
                    ax.x(b) - ax.x(a),
                    26.0,
                    r##"fill="#eee" stroke="#bbb""##,
                    "",
                );
            }
            let x = ax.x(size);
            let _ = std::fmt::Write::write_fmt(
                &mut s,
                format_args!(
                    r##"<line class="eof" x1="{x:.1}" y1="26" x2="{x:.1}" y2="150" stroke="{MISSING_RED}" stroke-width="2" stroke-dasharray="5 3"/>"##
                ),
            );
            text(
                &mut s,
                x + 4.0,
                160.0,
                MISSING_RED,
                &format!("i_size = {size}"),
            );
        }
        None => text(
            &mut s,
            150.0,
            50.0,
            MISSING_RED,
            &format!("fd {} is not open", q.new.fd),
        ),
    }
    for b in &existing {
        let (a, e) = (
            b.pgoff * PAGE_SIZE,
            b.pgoff.saturating_add(b.npages).saturating_mul(PAGE_SIZE),
        );
        rect(
            &mut s,
            "binding",
            ax.x(a),
            72.0,
            ax.x(e) - ax.x(a),
            26.0,
            r##"fill="#9ecae1" stroke="#333""##,
            &format!("slot {} pgoff {}", b.id, b.pgoff),
        );
    }
    let accepted = c.model["ret"].as_i64() == Some(0);
    let inside_end = size.map_or(new_end, |z| new_end.min(z)).max(q.new.offset);
    rect(
        &mut s,
        "new-binding",
        ax.x(q.new.offset),
        112.0,
        ax.x(inside_end) - ax.x(q.new.offset),
        26.0,
        &format!(
            r##"fill="{}" fill-opacity="0.6" stroke="#333""##,
            if accepted { MODEL_GREEN } else { "#fdd49e" }
        ),
        &format!(
            "slot {}: offset {}, {} pages",
            q.new.id, q.new.offset, q.new.npages
        ),
    );
    if new_end > inside_end {
        rect(
            &mut s,
            "past-eof",
            ax.x(inside_end),
            112.0,
            ax.x(new_end) - ax.x(inside_end),
            26.0,
            &format!(
                r##"fill="{MISSING_RED}" fill-opacity="0.35" stroke="{MISSING_RED}" stroke-width="2" stroke-dasharray="6 3""##
            ),
            &format!("{} bytes past i_size", new_end - inside_end),
        );
    }
    let ret = |v: &Value| {
        v["ret_errno"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v["ret"].to_string())
    };
    text(
        &mut s,
        8.0,
        190.0,
        MODEL_GREEN,
        &format!("model: {}", ret(&c.model)),
    );
    text(&mut s, 8.0, 210.0, C_BLUE, &format!("C: {}", ret(&c.c)));
    s.push_str("</svg>");
    Some(s)
}

fn explain(input: &Value) -> Vec<String> {
    super::explain_json(input, gmem_reference::explain::bind)
}

fn applicable(profile: Profile, q: &BindInput) -> bool {
    q.profile == profile
        && (q.contract == BindContract::Bind || profile == Profile::Upstream)
        && q.files.len() <= abi::GMF_MAX_FILES as usize
        && bindings_of(q, q.new.fd).len() < abi::GMF_MAX_BINDINGS as usize
        && matches!(memslot_checks(q), Ok(None))
}

/// The harness input of a case.
fn bind_input(q: &BindInput) -> abi::gmf_bind_in {
    let existing = bindings_of(q, q.new.fd);
    let mut input = abi::gmf_bind_in {
        nfiles: q.files.len() as u32,
        nbound: existing.len() as u32,
        id: q.new.id,
        base_gfn: q.new.base_gfn,
        npages: q.new.npages,
        fd: q.new.fd,
        offset: q.new.offset,
        ..Default::default()
    };
    for (d, f) in input.files.iter_mut().zip(&q.files) {
        *d = abi::gmf_file {
            fd: f.fd,
            size: f.size,
            is_gmem: u8::from(f.gmem),
            other_vm: u8::from(f.other_vm),
        };
    }
    for (d, b) in input.bound.iter_mut().zip(&existing) {
        *d = abi::gmf_binding {
            id: b.id,
            base_gfn: b.base_gfn,
            npages: b.npages,
            pgoff: b.pgoff,
        };
    }
    input
}

fn check(lib: &Library, q: &BindInput) -> Option<(String, Value)> {
    let m = kvm_gmem_bind(q).ok()?;
    let existing = bindings_of(q, q.new.fd);
    let input = bind_input(q);
    let mut o = abi::gmf_bind_out::default();
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.bind)(&input, &mut o) };
    let c_bound: Vec<(u16, u64, u64, u64)> = o.bound[..(o.nbound as usize).min(o.bound.len())]
        .iter()
        .map(|b| (b.id, b.base_gfn, b.npages, b.pgoff))
        .collect();
    let c = json!({"ret": o.ret, "pgoff": o.pgoff, "file_set": o.file_set != 0, "bindings_after": c_bound.len()});
    let mut expected: Vec<(u16, u64, u64, u64)> = existing
        .iter()
        .map(|b| (b.id, b.base_gfn, b.npages, b.pgoff))
        .collect();
    if let Some(b) = m.binding {
        expected.push((b.id, b.base_gfn, b.npages, b.pgoff));
    }
    expected.sort_by_key(|t| t.3);
    let mut why = Vec::new();
    if r != 0 {
        why.push(format!("gmf_bind returned {r}"));
    }
    if o.ret != m.ret {
        let called = match q.contract {
            BindContract::Bind => "kvm_gmem_bind()",
            BindContract::PrepareCommit => {
                "kvm_gmem_prepare_memory_region() + kvm_gmem_commit_memory_region()"
            }
        };
        why.push(format!("{called} returned {}, model {}", o.ret, m.ret));
    }
    if let Some(b) = m.binding
        && (o.pgoff != b.pgoff || o.file_set == 0)
    {
        why.push(format!(
            "slot after: C pgoff {} file set {}, model pgoff {} file set",
            o.pgoff,
            o.file_set != 0,
            b.pgoff
        ));
    }
    if m.binding.is_none() && o.file_set != 0 {
        why.push("slot->gmem.file set where the model refuses the bind".into());
    }
    if c_bound != expected {
        why.push(format!(
            "bindings of the file after: C {c_bound:?}, model {expected:?}"
        ));
    }
    (!why.is_empty()).then(|| (why.join("; "), c))
}

fn exhaustive() -> impl Iterator<Item = BindInput> {
    let offsets = [
        0u64,
        1,
        PAGE_SIZE - 1,
        PAGE_SIZE,
        2 * PAGE_SIZE,
        3 * PAGE_SIZE,
        4 * PAGE_SIZE,
        5 * PAGE_SIZE,
        u64::MAX - PAGE_SIZE + 1,
        (1 << 63) - PAGE_SIZE,
    ];
    let files = |kind: u8| -> Vec<OpenFile> {
        match kind {
            0 => vec![OpenFile {
                fd: 3,
                size: 4 * PAGE_SIZE,
                gmem: true,
                other_vm: false,
            }],
            1 => vec![],
            2 => vec![OpenFile {
                fd: 3,
                size: 4 * PAGE_SIZE,
                gmem: false,
                other_vm: false,
            }],
            _ => vec![OpenFile {
                fd: 3,
                size: 4 * PAGE_SIZE,
                gmem: true,
                other_vm: true,
            }],
        }
    };
    let existing: [Option<(u64, u64)>; 4] = [None, Some((0, 1)), Some((1, 2)), Some((3, 1))];
    Profile::ALL.into_iter().flat_map(move |profile| {
        (0u8..4).flat_map(move |kind| {
            existing.into_iter().flat_map(move |ex| {
                offsets.into_iter().flat_map(move |offset| {
                    (1u64..=3).map(move |npages| BindInput {
                        contract: Default::default(),
                        profile,
                        files: files(kind),
                        slots: ex
                            .filter(|_| kind == 0)
                            .map(|(pgoff, n)| Memslot {
                                id: 0,
                                base_gfn: 0x100,
                                npages: n,
                                gmem: Some(SlotGmem { fd: 3, pgoff }),
                            })
                            .into_iter()
                            .collect(),
                        new: NewSlot {
                            id: 1,
                            base_gfn: 0x200,
                            npages,
                            fd: 3,
                            offset,
                        },
                    })
                })
            })
        })
    })
}

fn random_case(rng: &mut Rng) -> BindInput {
    let size = rng.below(64) * PAGE_SIZE
        + if rng.below(8) == 0 {
            rng.below(PAGE_SIZE)
        } else {
            0
        };
    let files = vec![OpenFile {
        fd: 3,
        size,
        gmem: rng.below(8) != 0,
        other_vm: rng.below(8) == 0,
    }];
    let slots = (0..rng.below(3))
        .map(|i| Memslot {
            id: i as u16,
            base_gfn: 0x1000 * (i + 1),
            npages: 1 + rng.below(8),
            gmem: Some(SlotGmem {
                fd: 3,
                pgoff: i * 16 + rng.below(8),
            }),
        })
        .filter(|s| s.gmem.is_some_and(|g| g.pgoff + s.npages <= 64))
        .collect::<Vec<_>>();
    let offset = if rng.below(8) == 0 {
        rng.edgy()
    } else {
        rng.below(70) * PAGE_SIZE
            + if rng.below(6) == 0 {
                rng.below(PAGE_SIZE)
            } else {
                0
            }
    };
    BindInput {
        contract: Default::default(),
        profile: if rng.bool() {
            Profile::Upstream
        } else {
            Profile::GmemSolo2023
        },
        files,
        slots,
        new: NewSlot {
            id: 9,
            base_gfn: 0x8000,
            npages: 1 + rng.below(16),
            fd: if rng.below(8) == 0 { 4 } else { 3 },
            offset,
        },
    }
}

fn cases(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Box<dyn Iterator<Item = BindInput>> {
    cases_of(source, vectors, "bind", exhaustive, random_case)
}

/// Smaller cases, in the order bind minimises (ARCHITECTURE.md,
/// "Shrinking"): fewer memslots, fewer open files, a smaller file (whole
/// pages, at least one: a guest_memfd's size is page aligned and > 0),
/// the whole layout shifted towards file page 0 (offset and size down by
/// the same pages, so a binding past the end stays past it), a lower
/// offset, fewer pages (with the file shrinking along), then gfn 0.
///
/// Shrinking stays within what real callers pass: the generic memslot code
/// passes bind only page-aligned offsets, so an aligned offset shrinks to
/// aligned ones (whole pages fewer, half, zero), and an unaligned one is
/// first tried aligned down.
fn candidates(q: &BindInput) -> Vec<BindInput> {
    let mut out: Vec<BindInput> = (0..q.slots.len())
        .map(|i| {
            let mut c = q.clone();
            c.slots.remove(i);
            c
        })
        .collect();
    let used =
        |fd: u32| fd == q.new.fd || q.slots.iter().any(|s| s.gmem.is_some_and(|g| g.fd == fd));
    for (i, f) in q.files.iter().enumerate() {
        if !used(f.fd) {
            let mut c = q.clone();
            c.files.remove(i);
            out.push(c);
        }
    }
    let with_file = |size: u64| -> Option<BindInput> {
        let mut c = q.clone();
        let f = c.files.iter_mut().find(|f| f.fd == q.new.fd)?;
        if size == f.size {
            return None;
        }
        f.size = size;
        Some(c)
    };
    let file = q.files.iter().find(|f| f.fd == q.new.fd).copied();
    if let Some(f) = file {
        let pages = f.size / PAGE_SIZE;
        // A size that is not whole pages goes to whole pages first.
        let sizes: Vec<u64> = if f.size % PAGE_SIZE != 0 {
            vec![pages.max(1) * PAGE_SIZE, (pages + 1) * PAGE_SIZE]
        } else {
            smaller_numbers(pages)
                .into_iter()
                .filter(|&p| p > 0)
                .map(|p| p * PAGE_SIZE)
                .collect()
        };
        out.extend(sizes.into_iter().filter_map(&with_file));
        // Shift everything left by k pages: the binding keeps its place
        // relative to the end of the file.
        let offset_pages = q.new.offset / PAGE_SIZE;
        for k in [offset_pages, offset_pages / 2, 1] {
            if k == 0 || k > offset_pages || f.size < (k + 1) * PAGE_SIZE {
                continue;
            }
            if let Some(mut c) = with_file(f.size - k * PAGE_SIZE) {
                c.new.offset -= k * PAGE_SIZE;
                out.push(c);
            }
        }
    }
    let offsets: Vec<u64> = if q.new.offset % PAGE_SIZE == 0 {
        smaller_numbers(q.new.offset / PAGE_SIZE)
            .into_iter()
            .map(|p| p * PAGE_SIZE)
            .collect()
    } else {
        let mut v = vec![q.new.offset & !(PAGE_SIZE - 1)];
        v.extend(smaller_numbers(q.new.offset));
        v
    };
    out.extend(offsets.into_iter().map(|offset| BindInput {
        new: NewSlot { offset, ..q.new },
        ..q.clone()
    }));
    for npages in smaller_numbers(q.new.npages).into_iter().filter(|&n| n > 0) {
        let fewer = q.new.npages - npages;
        out.push(BindInput {
            new: NewSlot { npages, ..q.new },
            ..q.clone()
        });
        // Past loff_t's range: fewer pages at an offset further by as
        // many, the same end, so a sum that wraps as a loff_t still wraps
        // (below it a higher offset is not smaller).
        let end = q
            .new
            .offset
            .checked_add(q.new.npages.saturating_mul(PAGE_SIZE));
        if end.is_some_and(|e| e >= 1 << 63)
            && let Some(offset) = q.new.offset.checked_add(fewer * PAGE_SIZE)
        {
            out.push(BindInput {
                new: NewSlot {
                    npages,
                    offset,
                    ..q.new
                },
                ..q.clone()
            });
        }
        // Fewer pages and a file smaller by as many: same overhang.
        if let Some(f) = file
            && f.size >= (fewer + 1) * PAGE_SIZE
            && let Some(mut c) = with_file(f.size - fewer * PAGE_SIZE)
        {
            c.new.npages = npages;
            out.push(c);
        }
    }
    // The existing bindings nearer the file's start and shorter: the
    // overlap a counterexample needs is then at its first pages.
    for (i, s) in q.slots.iter().enumerate() {
        let Some(g) = s.gmem else { continue };
        for pgoff in smaller_numbers(g.pgoff) {
            let mut c = q.clone();
            c.slots[i].gmem = Some(SlotGmem { pgoff, ..g });
            out.push(c);
        }
        for npages in smaller_numbers(s.npages).into_iter().filter(|&n| n > 0) {
            let mut c = q.clone();
            c.slots[i].npages = npages;
            out.push(c);
        }
        for base_gfn in smaller_numbers(s.base_gfn) {
            let mut c = q.clone();
            c.slots[i].base_gfn = base_gfn;
            out.push(c);
        }
    }
    out.extend(
        smaller_numbers(q.new.base_gfn)
            .into_iter()
            .map(|base_gfn| BindInput {
                new: NewSlot { base_gfn, ..q.new },
                ..q.clone()
            }),
    );
    // A binding that exists was made by a bind, so it lies inside its
    // file: a smaller case keeps that if the case had it.
    if bound_inside_files(q) {
        out.retain(bound_inside_files);
    }
    out
}

/// Whether every existing binding lies inside its file, as only a bind
/// that passed the i_size check could have made it.
fn bound_inside_files(q: &BindInput) -> bool {
    q.slots.iter().all(|s| {
        s.gmem.is_none_or(|g| {
            q.files.iter().any(|f| {
                f.fd == g.fd
                    && g.pgoff
                        .checked_add(s.npages)
                        .is_some_and(|end| end <= f.size / PAGE_SIZE)
            })
        })
    })
}

fn run(ctx: &Ctx<'_>, source: Source) -> Outcome {
    let (lib, profile) = (ctx.lib, ctx.profile);
    let contract = contract_of(lib);
    run_cases(
        ctx,
        held_to(cases(source, ctx.vectors), contract),
        &CaseOps {
            other_profile: Some(&|q| q.profile != profile || q.contract != contract),
            applicable: &|q| applicable(profile, q),
            check: &|q| check(lib, q),
            candidates: &candidates,
            model_json: &|q| kvm_gmem_bind(q).map(|a| to_json(&a)).unwrap_or(Value::Null),
        },
    )
}

fn case_json(
    source: Source,
    index: u64,
    _p: Profile,
    lib: &Library,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    nth_case_json(held_to(cases(source, vectors), contract_of(lib)), index)
}

/// The contract the C is held to: its shape decides (`GMF_OP_BIND_SPLIT`:
/// 7.2's prepare + commit), never the errno it returns.
fn contract_of(lib: &Library) -> BindContract {
    if lib.has(abi::GMF_OP_BIND_SPLIT) {
        BindContract::PrepareCommit
    } else {
        BindContract::Bind
    }
}

/// `cases` as asked of C of `contract`: an upstream case written for the
/// one-call bind (every vector before 7.2, the bounds) is asked with the
/// split's contract when the C binds in two; a case naming the split's
/// contract stays as it is, so on one-call C it is of another profile.
fn held_to(
    cases: Box<dyn Iterator<Item = BindInput>>,
    contract: BindContract,
) -> Box<dyn Iterator<Item = BindInput>> {
    if contract == BindContract::Bind {
        return cases;
    }
    Box::new(cases.map(move |mut q| {
        if q.profile == Profile::Upstream {
            q.contract = contract;
        }
        q
    }))
}

/// The exhaustive cases timed apart (the bench).
pub fn split(lib: &Library, profile: Profile) -> Split {
    let none = |_: &str| Vec::new();
    let contract = contract_of(lib);
    time_split(
        || held_to(cases(Source::Exhaustive, &none), contract),
        |q| applicable(profile, q),
        |q| {
            let input = bind_input(q);
            let mut o = abi::gmf_bind_out::default();
            // SAFETY: valid pointers for the call.
            unsafe { (lib.bind)(&input, &mut o) };
            std::hint::black_box(&o);
        },
        |q| {
            std::hint::black_box(kvm_gmem_bind(q).ok());
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shrinking keeps what real callers pass: the generic memslot code
    /// rejects an unaligned guest_memfd offset before kvm_gmem_bind().
    #[test]
    fn an_aligned_offset_shrinks_only_to_aligned_offsets() {
        let q = BindInput {
            contract: Default::default(),
            profile: Profile::GmemSolo2023,
            files: Vec::new(),
            slots: Vec::new(),
            new: NewSlot {
                id: 1,
                base_gfn: 512,
                npages: 4,
                fd: 3,
                offset: 12 * PAGE_SIZE,
            },
        };
        let offsets: Vec<u64> = candidates(&q)
            .iter()
            .map(|c| c.new.offset)
            .filter(|&o| o != q.new.offset)
            .collect();
        assert!(!offsets.is_empty());
        assert!(offsets.iter().all(|o| o % PAGE_SIZE == 0), "{offsets:?}");
        assert!(offsets.contains(&0) && offsets.contains(&(6 * PAGE_SIZE)));
    }
}
