//! # gmem-reference: how guest_memfd and its SEV-SNP hooks must behave
//!
//! An executable specification of the KVM guest_memfd ("gmem") private-memory
//! code and its AMD SEV-SNP RMP hooks, from the design the May 2023 LKML
//! thread settled on and Linux 6.12 implements. Each item is named after the
//! kernel function it specifies and cites it.
//!
//! The model does no IO and never panics: every `u64` is a valid input, the
//! kernel's unsigned arithmetic is mirrored with explicit `wrapping_*`
//! operations, and inputs the kernel could never see are refused with an
//! [`InputError`] that names the field.
//!
//! | module | kernel |
//! | --- | --- |
//! | [`invalidate`] | `kvm_gmem_invalidate_begin()` / `_end()` |
//! | [`binding`] | `kvm_gmem_bind()` and the memslot checks before it |
//! | [`fallocate`] | `kvm_gmem_fallocate()` |
//! | [`fault`] | `npf_interception()` → `kvm_mmu_do_page_fault()` → `kvm_faultin_pfn()` |
//! | [`rmp`] | `sev_gmem_prepare()`, `sev_gmem_invalidate()`, `sev_private_max_mapping_level()` |
//! | [`prefault`] | `KVM_PRE_FAULT_MEMORY` |
//! | [`getpfn`] | `kvm_gmem_get_pfn()`: the fault path and its prepare hook |
//! | [`lifecycle`] | when RMP updates happen, and under which lock |
//! | [`page_cache`] | a guest_memfd file's page cache (folios by index) |
//! | [`rules`] | the formulas shared with the generated C |
//! | [`explain`] | why the model answers as it does, rule by rule, for counterexamples |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binding;
pub mod error;
pub mod explain;
pub mod fallocate;
pub mod fault;
pub mod getpfn;
pub mod invalidate;
pub mod kernel;
mod last_input;
pub mod lifecycle;
pub mod ops;
pub mod page_cache;
pub mod prefault;
pub mod profile;
pub mod rmp;
pub mod rules;

pub use error::InputError;
pub use profile::Profile;
