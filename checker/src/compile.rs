//! Compiling C under test into a shared object, at run time.
//!
//! The shim, the adapters and the harness header are embedded in the
//! binary and written next to the unit in a per-user cache directory; gcc
//! (found through the `cc` crate, as a build script would) compiles
//! `unit.c` — which includes the shim header, the unit, and one adapter per
//! operation the unit implements — together with `shim.c`. Outputs are cached
//! by a hash of every input and written atomically (temporary name, then
//! rename), so concurrent runs never see half a library.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use gmem_reference::Profile;

use crate::cache;
use crate::elf;
use crate::library::{Library, OpenError};
use crate::screen;

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../c/", $path)))),*]
    };
}

/// C sources of the checker, by path relative to `checker/c/`.
pub const C_FILES: &[(&str, &str)] = embed!(
    "harness.h",
    "unit.c",
    "shim/gmf_kernel.h",
    "shim/rmp.h",
    "shim/shim.c",
    "shim/kunit/test.h",
    "shim/stddef.h",
    "shim/stdint.h",
    "adapters/common.h",
    "adapters/invalidate.c",
    "adapters/classify.c",
    "adapters/rmp.c",
    "adapters/prefault.c",
    "adapters/bind.c",
    "adapters/punch.c",
    "adapters/kunit.c",
    "adapters/getpfn.c",
);

/// One operation of the harness ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum COp {
    /// `gmf_invalidate`.
    Invalidate,
    /// `gmf_classify`.
    Classify,
    /// `gmf_prepare`.
    Prepare,
    /// `gmf_rmp_invalidate`.
    RmpInvalidate,
    /// `gmf_prefault`.
    Prefault,
    /// `gmf_bind`.
    Bind,
    /// `gmf_punch_hole`.
    PunchHole,
    /// `gmf_get_pfn`.
    GetPfn,
}

impl COp {
    /// Every operation.
    pub const ALL: [COp; 8] = [
        COp::Invalidate,
        COp::Classify,
        COp::Prepare,
        COp::RmpInvalidate,
        COp::Prefault,
        COp::Bind,
        COp::PunchHole,
        COp::GetPfn,
    ];

    /// The `-DGMF_HAVE_OP_*` macro.
    pub fn macro_name(self) -> &'static str {
        match self {
            COp::Invalidate => "GMF_HAVE_OP_INVALIDATE",
            COp::Classify => "GMF_HAVE_OP_CLASSIFY",
            COp::Prepare => "GMF_HAVE_OP_PREPARE",
            COp::RmpInvalidate => "GMF_HAVE_OP_RMP_INVALIDATE",
            COp::Prefault => "GMF_HAVE_OP_PREFAULT",
            COp::Bind => "GMF_HAVE_OP_BIND",
            COp::PunchHole => "GMF_HAVE_OP_PUNCH_HOLE",
            COp::GetPfn => "GMF_HAVE_OP_GET_PFN",
        }
    }

    /// Kernel functions a unit must define for this operation.
    pub fn needs(self, profile: Profile) -> &'static [&'static str] {
        match (self, profile) {
            (COp::Invalidate, _) => &["kvm_gmem_invalidate_begin", "kvm_gmem_invalidate_end"],
            (COp::Classify, _) => &[
                "npf_interception",
                "kvm_mmu_page_fault",
                "kvm_mmu_do_page_fault",
            ],
            (COp::Prepare, _) => &["sev_gmem_prepare", "sev_private_max_mapping_level"],
            (COp::RmpInvalidate, _) => &["sev_gmem_invalidate"],
            (COp::Prefault, _) => &[
                "kvm_vcpu_pre_fault_memory",
                "kvm_arch_vcpu_pre_fault_memory",
            ],
            // The builtin upstream unit binds as 7.2 does, in two halves.
            (COp::Bind, Profile::Upstream) => &[
                "kvm_gmem_prepare_memory_region",
                "kvm_gmem_commit_memory_region",
            ],
            (COp::Bind, Profile::GmemSolo2023) => &["kvm_gmem_bind"],
            (COp::PunchHole, _) => &[
                "kvm_gmem_punch_hole",
                "kvm_gmem_free_folio",
                "kvm_gmem_invalidate_begin",
                "kvm_gmem_invalidate_end",
                "sev_gmem_invalidate",
            ],
            (COp::GetPfn, _) => &["kvm_gmem_get_pfn"],
        }
    }
}

/// Why C could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// No usable C compiler.
    NoCompiler(String),
    /// The cache directory or a file in it cannot be written.
    Io(String),
    /// gmemforge's own compiled object does not load, even freshly built:
    /// an internal failure, never a verdict about the C.
    Load(String),
    /// The C names a file outside the shim (an `#include` of an absolute
    /// path, `..`, a header the shim lacks; an assembler `.incbin`):
    /// refused before gcc read it (`crate::screen`).
    Refused {
        /// The unit's name.
        unit: String,
        /// Where and what.
        why: String,
    },
    /// The compiler rejected the C; `log` is its output.
    Rejected {
        /// The unit's name.
        unit: String,
        /// What the compiler printed.
        log: String,
    },
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::NoCompiler(m) => write!(f, "no C compiler: {m} (install gcc)"),
            CompileError::Io(m) => write!(f, "{m}"),
            CompileError::Load(m) => write!(f, "gmemforge's compiled object does not load: {m}"),
            CompileError::Refused { unit, why } => {
                write!(f, "{unit} is refused: {why}")
            }
            CompileError::Rejected { unit, log } => {
                write!(f, "{unit} does not compile against the shim:\n{log}")
            }
        }
    }
}

impl std::error::Error for CompileError {}

/// What to compile.
#[derive(Debug, Clone)]
pub struct CSource<'a> {
    /// A name for messages and file names (`builtin:upstream`).
    pub name: &'a str,
    /// Profile of the struct shapes.
    pub profile: Profile,
    /// The C of the functions under test.
    pub text: &'a str,
    /// The operations to build adapters for.
    pub ops: &'a [COp],
    /// Extra `-D` definitions describing the unit (`GMF_HAVE_FAULT_IS_PRIVATE`).
    pub defines: &'a [String],
}

/// gcc runs this process made. `history --json` reports it, so a second
/// run over the same commits can be seen to answer from the caches alone.
static COMPILES: AtomicU64 = AtomicU64::new(0);

/// How many times this process ran the C compiler.
pub fn compiles() -> u64 {
    COMPILES.load(Ordering::Relaxed)
}

/// The compile cache's directory (`$XDG_CACHE_HOME/gmemforge/c`); the
/// verdict cache lives in it too (`verdicts/`).
pub fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("gmemforge").join("c")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CompileError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| CompileError::Io(format!("{}: {e}", path.display())))
}

fn compiler() -> Result<Command, CompileError> {
    let mut b = cc::Build::new();
    b.cargo_metadata(false)
        .cargo_warnings(false)
        .cargo_debug(false)
        .cargo_output(false)
        .opt_level(2)
        .debug(false)
        .warnings(false)
        .extra_warnings(false)
        .target(env!("GMF_TARGET"))
        .host(env!("GMF_HOST"));
    let tool = b
        .try_get_compiler()
        .map_err(|e| CompileError::NoCompiler(e.to_string()))?;
    // cc spells "warnings(false)" as -w, which would also silence the
    // -Werror=... diagnostics C_FLAGS relies on: keep everything but it.
    let mut cmd = std::process::Command::new(tool.path());
    cmd.args(tool.args().iter().filter(|a| a.to_str() != Some("-w")));
    for (k, v) in tool.get_envs() {
        cmd.env(k, v);
    }
    Ok(cmd)
}

/// Flags every build uses: GNU C as the kernel writes it, and the kernel's
/// own code-generation choices where they change semantics (signed
/// overflow wraps, no strict aliasing, NULL checks kept). The shim makes the
/// kernel's min()/max() type check a compile error by itself.
pub const C_FLAGS: &[&str] = &[
    "-std=gnu11",
    // The shim is the only include path: no system or user directories,
    // so a tree's text reaches no header but the shim's (crate::screen
    // refuses the names that would bypass the search path).
    "-nostdinc",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
    "-fno-strict-overflow",
    "-fno-strict-aliasing",
    "-fno-delete-null-pointer-checks",
    "-Wall",
    "-Wno-unused-function",
    "-Wno-unused-variable",
    "-Wno-unused-label",
    "-Werror=implicit-function-declaration",
    "-Werror=incompatible-pointer-types",
    "-Werror=int-conversion",
    // No C runtime start files: the object then has no code that runs
    // when it is loaded (crt's _init, frame_dummy) unless the C under test
    // put some there, which crate::elf finds and the build refuses — the
    // checker dlopens the object in its own, unconfined, process.
    "-nostartfiles",
    // A function the C names that nothing defines (a tree with svm.c's
    // table but no sev.c) is the link's error, named, not dlopen's
    // "undefined symbol" later (which would look like our own failure).
    "-Wl,-z,defs",
];

/// Compiles `src` (or reuses the cached library) and returns its path.
pub fn compile(src: &CSource<'_>) -> Result<PathBuf, CompileError> {
    // Before anything reads the text: nothing in it may name a file
    // outside the shim.
    screen::text(src.text).map_err(|r| CompileError::Refused {
        unit: src.name.to_owned(),
        why: format!("{r} (before gcc read anything)"),
    })?;
    let mut cmd = compiler()?;
    let mut h = DefaultHasher::new();
    // The compiler and its arguments are part of the key: a changed
    // command must not reuse an object built by the old one.
    (
        format!(
            "{:?} {:?}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>()
        ),
        src.text,
        src.profile.name(),
        src.ops,
        src.defines,
        C_FILES,
        C_FLAGS,
    )
        .hash(&mut h);
    let key = format!("{:016x}", h.finish());
    let dir = cache_root().join(&key);
    let lib = dir.join("impl.so");
    if cache::verified(&lib) {
        return Ok(lib);
    }
    // Missing, half of a pair, truncated or overwritten: build it again.
    cache::forget(&lib);
    std::fs::create_dir_all(dir.join("shim/kunit"))
        .and_then(|()| std::fs::create_dir_all(dir.join("adapters")))
        .map_err(|e| {
            CompileError::Io(format!("cannot create the C cache {}: {e}", dir.display()))
        })?;
    for (path, text) in C_FILES {
        write_atomic(&dir.join(path), text.as_bytes())?;
    }
    let unit_path = dir.join("under_test.c");
    write_atomic(&unit_path, src.text.as_bytes())?;
    let pid = std::process::id();
    let tmp_lib = dir.join(format!("impl.so.tmp{pid}"));
    let tmp_asm = dir.join(format!("unit.s.tmp{pid}"));
    // gcc runs in the cache directory: a relative `#line` file name (the
    // tree's own paths) can only reach the cache, whose lines gcc may
    // show in a diagnostic.
    cmd.current_dir(&dir)
        .args(C_FLAGS)
        .arg(format!(
            "-DGMF_PROFILE={}",
            if src.profile == Profile::Upstream {
                0
            } else {
                1
            }
        ))
        .arg(format!("-DGMF_UNIT=\"{}\"", unit_path.display()))
        .arg(format!("-I{}", dir.display()))
        // <kunit/test.h> for generated KUnit suites.
        .arg(format!("-I{}", dir.join("shim").display()));
    for op in src.ops {
        cmd.arg(format!("-D{}", op.macro_name()));
    }
    for d in src.defines {
        cmd.arg(format!("-D{d}"));
    }
    let rejected = |out: &std::process::Output| CompileError::Rejected {
        unit: src.name.to_owned(),
        log: String::from_utf8_lossy(&out.stderr).replace(&format!("{}/", dir.display()), ""),
    };
    let run = |cmd: &mut Command| {
        cmd.output()
            .map_err(|e| CompileError::NoCompiler(format!("{cmd:?}: {e}")))
    };
    // Two steps: the unit to assembly, read (the assembler reads files
    // that inline assembly names: crate::screen::assembly), then that
    // assembly and the shim into the object.
    let mut to_asm = Command::new(cmd.get_program());
    to_asm
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(&dir)
        .arg("-S")
        .arg(dir.join("unit.c"))
        .arg("-o")
        .arg(&tmp_asm);
    let out = run(&mut to_asm)?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp_asm);
        return Err(rejected(&out));
    }
    let asm = std::fs::read_to_string(&tmp_asm)
        .map_err(|e| CompileError::Io(format!("{}: {e}", tmp_asm.display())));
    let screened = asm.and_then(|a| {
        screen::assembly(&a, src.text).map_err(|r| CompileError::Refused {
            unit: src.name.to_owned(),
            why: r.to_string(),
        })
    });
    if let Err(e) = screened {
        let _ = std::fs::remove_file(&tmp_asm);
        return Err(e);
    }
    cmd.arg("-x")
        .arg("assembler")
        .arg(&tmp_asm)
        .arg("-x")
        .arg("none")
        .arg(dir.join("shim/shim.c"))
        .arg("-o")
        .arg(&tmp_lib);
    COMPILES.fetch_add(1, Ordering::Relaxed);
    let out = run(&mut cmd);
    let _ = std::fs::remove_file(&tmp_asm);
    let out = out?;
    if !out.status.success() {
        return Err(rejected(&out));
    }
    let object = std::fs::read(&tmp_lib)
        .map_err(|e| CompileError::Io(format!("{}: {e}", tmp_lib.display())))?;
    if let Err(why) = elf::load_time_code(&object) {
        let _ = std::fs::remove_file(&tmp_lib);
        return Err(CompileError::Refused {
            unit: src.name.to_owned(),
            why: format!("the compiled object would run code of its own when loaded: {why}"),
        });
    }
    cache::seal(&tmp_lib, &lib)?;
    cache::prune(&cache_root(), &dir);
    Ok(lib)
}

/// Compiles `src` (or reuses the cached library) and loads it. A cached
/// object that verifies but still does not load is built once more; if
/// that does not load either, the failure is gmemforge's, not the C's.
pub fn load(src: &CSource<'_>) -> Result<Library, CompileError> {
    let ran = |why: String| CompileError::Refused {
        unit: src.name.to_owned(),
        why,
    };
    let path = compile(src)?;
    match Library::open(&path) {
        Ok(lib) => Ok(lib),
        Err(OpenError::Ran(why)) => Err(ran(why)),
        Err(OpenError::Load(_)) => {
            cache::forget(&path);
            let path = compile(src)?;
            Library::open(&path).map_err(|e| match e {
                OpenError::Ran(why) => ran(why),
                OpenError::Load(e) => CompileError::Load(format!("{}: {e}", path.display())),
            })
        }
    }
}
