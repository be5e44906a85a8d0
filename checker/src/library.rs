//! A compiled implementation, loaded with dlopen.
//!
//! Each shared object exports the harness entry points once (no prefixes:
//! every implementation is its own object). Loading resolves them into
//! typed function pointers; a missing symbol is a missing operation.

use std::ffi::{CStr, CString, c_int, c_void};
use std::path::Path;

use crate::abi;

/// `gmf_invalidate`.
pub type InvalidateFn =
    unsafe extern "C" fn(*const abi::gmf_invalidate_in, *mut abi::gmf_invalidate_out) -> c_int;
/// `gmf_classify`.
pub type ClassifyFn =
    unsafe extern "C" fn(*const abi::gmf_fault_in, *mut abi::gmf_fault_out) -> c_int;
/// `gmf_prepare`.
pub type PrepareFn =
    unsafe extern "C" fn(*const abi::gmf_prepare_in, *mut abi::gmf_rmp_out) -> c_int;
/// `gmf_rmp_invalidate`.
pub type RmpInvalidateFn =
    unsafe extern "C" fn(*const abi::gmf_rmp_invalidate_in, *mut abi::gmf_rmp_out) -> c_int;
/// `gmf_prefault`.
pub type PrefaultFn =
    unsafe extern "C" fn(*const abi::gmf_prefault_in, *mut abi::gmf_prefault_out) -> c_int;
/// `gmf_get_pfn`.
pub type GetPfnFn =
    unsafe extern "C" fn(*const abi::gmf_getpfn_in, *mut abi::gmf_getpfn_out) -> c_int;
/// `gmf_punch_hole`.
pub type PunchHoleFn =
    unsafe extern "C" fn(*const abi::gmf_punch_in, *mut abi::gmf_rmp_out) -> c_int;
/// `gmf_kunit_run`.
pub type KunitRunFn = unsafe extern "C" fn(*mut c_int) -> c_int;
/// `gmf_bind`.
pub type BindFn = unsafe extern "C" fn(*const abi::gmf_bind_in, *mut abi::gmf_bind_out) -> c_int;

/// Entry points of one loaded implementation.
pub struct Library {
    handle: *mut c_void,
    /// `gmf_invalidate`.
    pub invalidate: InvalidateFn,
    /// `gmf_classify`.
    pub classify: ClassifyFn,
    /// `gmf_prepare`.
    pub prepare: PrepareFn,
    /// `gmf_rmp_invalidate`.
    pub rmp_invalidate: RmpInvalidateFn,
    /// `gmf_prefault`.
    pub prefault: PrefaultFn,
    /// `gmf_bind`.
    pub bind: BindFn,
    /// `gmf_punch_hole`.
    pub punch_hole: PunchHoleFn,
    /// `gmf_get_pfn`.
    pub get_pfn: GetPfnFn,
    /// `gmf_kunit_run`.
    pub kunit_run: KunitRunFn,
    /// `gmf_ops()`: which entry points are real (the others return -2).
    pub ops: u32,
}

// SAFETY: the handle is only used to keep the object mapped; the entry
// points are plain C functions over caller-provided buffers.
unsafe impl Send for Library {}

fn last_dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string owned by libc.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown dlopen error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// Why an object could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// dlopen or a symbol failed, or the ABI version differs: the object
    /// is not what we built.
    Load(String),
    /// Its `gmf_abi_version()`/`gmf_ops()` did not return normally in the
    /// confined child that calls them: the unit's text redefined them
    /// (its macros reach the adapters), a finding about that text.
    Ran(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Load(m) | OpenError::Ran(m) => f.write_str(m),
        }
    }
}

impl Library {
    /// Loads the shared object at `path`. Nothing of the object runs in
    /// this process: it has no load-time code (`crate::elf`), and
    /// `gmf_abi_version()` and `gmf_ops()` — compiled after the unit's
    /// text, whose macros can redefine them — are called in a confined
    /// child.
    pub fn open(path: &Path) -> Result<Library, OpenError> {
        let load = |m: String| OpenError::Load(m);
        let cpath = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| load("path has a NUL byte".to_owned()))?;
        // SAFETY: cpath is a valid C string; RTLD_LOCAL keeps every
        // implementation's symbols apart.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(load(format!("{}: {}", path.display(), last_dl_error())));
        }
        let sym = |name: &str| -> Result<*mut c_void, OpenError> {
            let c = CString::new(name).map_err(|_| load("bad symbol name".to_owned()))?;
            // SAFETY: handle is a live dlopen handle.
            let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
            if p.is_null() {
                Err(load(format!("{}: no symbol {name}", path.display())))
            } else {
                Ok(p)
            }
        };
        // SAFETY: each symbol is the harness.h function of that name, whose
        // signature the typedef above mirrors (src/abi.rs is bindgen's).
        unsafe {
            let ops_fn: unsafe extern "C" fn() -> u32 = std::mem::transmute(sym("gmf_ops")?);
            let abi_fn: unsafe extern "C" fn() -> u32 =
                std::mem::transmute(sym("gmf_abi_version")?);
            let (abi_version, ops) = crate::isolate::run(|p| {
                p.at(0);
                // Called in the confined child only.
                (abi_fn(), ops_fn())
            })
            .map_err(|a| {
                OpenError::Ran(format!(
                    "gmf_abi_version()/gmf_ops(), which the unit's text can redefine, {a} \
                     (called in a confined child)"
                ))
            })?;
            if abi_version != abi::GMF_ABI_VERSION {
                return Err(load(format!(
                    "{}: harness ABI {abi_version} (expected {})",
                    path.display(),
                    abi::GMF_ABI_VERSION
                )));
            }
            Ok(Library {
                handle,
                invalidate: std::mem::transmute::<*mut c_void, InvalidateFn>(sym(
                    "gmf_invalidate",
                )?),
                classify: std::mem::transmute::<*mut c_void, ClassifyFn>(sym("gmf_classify")?),
                prepare: std::mem::transmute::<*mut c_void, PrepareFn>(sym("gmf_prepare")?),
                rmp_invalidate: std::mem::transmute::<*mut c_void, RmpInvalidateFn>(sym(
                    "gmf_rmp_invalidate",
                )?),
                prefault: std::mem::transmute::<*mut c_void, PrefaultFn>(sym("gmf_prefault")?),
                bind: std::mem::transmute::<*mut c_void, BindFn>(sym("gmf_bind")?),
                punch_hole: std::mem::transmute::<*mut c_void, PunchHoleFn>(sym("gmf_punch_hole")?),
                get_pfn: std::mem::transmute::<*mut c_void, GetPfnFn>(sym("gmf_get_pfn")?),
                kunit_run: std::mem::transmute::<*mut c_void, KunitRunFn>(sym("gmf_kunit_run")?),
                ops,
            })
        }
    }

    /// Whether the implementation provides the operation bit `op` (`GMF_OP_*`).
    pub fn has(&self, op: u32) -> bool {
        self.ops & op != 0
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: handle came from dlopen and no entry point outlives self.
        unsafe {
            libc::dlclose(self.handle);
        }
    }
}
