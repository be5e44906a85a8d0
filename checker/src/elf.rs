//! Does a compiled object run code of its own when it is loaded?
//!
//! The checker dlopens the object it built in its own process (the parent
//! reads the entry points and `gmf_ops()`; only the children, confined,
//! call into the tree's functions). dlopen runs an object's constructors
//! (`.init_array`, `.init`, old `.ctors`) and, with RTLD_NOW, the
//! resolvers of its IFUNC symbols — and a tree's text can make any of
//! them (`__attribute__((constructor))`, or inline assembly that pushes
//! an address into `.init_array`). The object is linked without the C
//! runtime's start files (`-nostartfiles`: no crt `_init`/`frame_dummy`
//! of its own), so it has no load-time code at all unless the tree's text
//! put some there; [`load_time_code`] reads the linked object and says
//! what it found. The checker refuses such an object before it loads it.

/// Section names whose code runs at load or unload.
const RUN_AT_LOAD: &[&str] = &[
    ".init",
    ".fini",
    ".init_array",
    ".fini_array",
    ".preinit_array",
    ".ctors",
    ".dtors",
];

/// Dynamic-section tags an object without load-time code has (ELF gABI
/// and the GNU extensions ld writes for a plain shared object). Anything
/// else (DT_INIT, DT_INIT_ARRAY, DT_AUDIT, ...) is refused.
const DYNAMIC_TAGS: &[u64] = &[
    0,           // DT_NULL
    1,           // DT_NEEDED (checked: only libc)
    2,           // DT_PLTRELSZ
    3,           // DT_PLTGOT
    4,           // DT_HASH
    5,           // DT_STRTAB
    6,           // DT_SYMTAB
    7,           // DT_RELA
    8,           // DT_RELASZ
    9,           // DT_RELAENT
    10,          // DT_STRSZ
    11,          // DT_SYMENT
    14,          // DT_SONAME
    20,          // DT_PLTREL
    21,          // DT_DEBUG
    22,          // DT_TEXTREL
    23,          // DT_JMPREL
    24,          // DT_BIND_NOW
    30,          // DT_FLAGS
    35,          // DT_RELRSZ
    36,          // DT_RELR
    37,          // DT_RELRENT
    0x6fff_fef5, // DT_GNU_HASH
    0x6fff_fff0, // DT_VERSYM
    0x6fff_fff9, // DT_RELACOUNT
    0x6fff_fffb, // DT_FLAGS_1
    0x6fff_fffc, // DT_VERDEF
    0x6fff_fffd, // DT_VERDEFNUM
    0x6fff_fffe, // DT_VERNEED
    0x6fff_ffff, // DT_VERNEEDNUM
];

/// Libraries the object may need: the C library, which the shim's
/// allocations and the C under test's own calls bind to (and whose own
/// constructors have already run in the checker).
const NEEDED: &[&str] = &["libc.so.6"];

fn int(b: &[u8], at: usize, n: usize) -> Result<u64, String> {
    let s = b
        .get(at..at + n)
        .ok_or_else(|| format!("truncated object (offset {at})"))?;
    let mut v = 0u64;
    for (i, x) in s.iter().enumerate() {
        v |= u64::from(*x) << (8 * i);
    }
    Ok(v)
}

fn cstr(b: &[u8], at: usize) -> String {
    let s = b.get(at..).unwrap_or_default();
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

struct Section {
    name: String,
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
    entsize: usize,
}

/// `Err` says what in the object `b` (a little-endian ELF64 shared
/// object) would run when it is loaded or unloaded.
pub fn load_time_code(b: &[u8]) -> Result<(), String> {
    if b.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err("not a little-endian 64-bit ELF object".into());
    }
    let irelative = match int(b, 0x12, 2)? {
        62 => 37,    // x86-64: R_X86_64_IRELATIVE
        183 => 1032, // aarch64: R_AARCH64_IRELATIVE
        m => return Err(format!("unexpected machine {m}")),
    };
    let shoff = int(b, 0x28, 8)? as usize;
    let shentsize = int(b, 0x3a, 2)? as usize;
    let shnum = int(b, 0x3c, 2)? as usize;
    let shstrndx = int(b, 0x3e, 2)? as usize;
    let mut sections = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let h = shoff + i * shentsize;
        sections.push((
            int(b, h, 4)? as usize,
            Section {
                name: String::new(),
                kind: int(b, h + 4, 4)? as u32,
                offset: int(b, h + 0x18, 8)? as usize,
                size: int(b, h + 0x20, 8)? as usize,
                link: int(b, h + 0x28, 4)? as usize,
                entsize: int(b, h + 0x38, 8)? as usize,
            },
        ));
    }
    let names = sections
        .get(shstrndx)
        .map(|(_, s)| s.offset)
        .ok_or("no section names")?;
    let sections: Vec<Section> = sections
        .into_iter()
        .map(|(n, s)| Section {
            name: cstr(b, names + n),
            ..s
        })
        .collect();
    for s in &sections {
        // SHT_INIT_ARRAY, SHT_FINI_ARRAY, SHT_PREINIT_ARRAY.
        if RUN_AT_LOAD.contains(&s.name.as_str()) || (14..=16).contains(&s.kind) {
            return Err(format!(
                "a {} section (code that runs when the object is loaded or unloaded)",
                s.name
            ));
        }
        let entries = |size: usize| {
            (0..s.size / s.entsize.max(size)).map(move |i| s.offset + i * s.entsize.max(size))
        };
        match s.kind {
            // SHT_SYMTAB, SHT_DYNSYM: st_info's type STT_GNU_IFUNC.
            2 | 11 => {
                for e in entries(24) {
                    if int(b, e + 4, 1)? & 0xf == 10 {
                        let name = sections
                            .get(s.link)
                            .map(|st| cstr(b, st.offset + int(b, e, 4).unwrap_or(0) as usize))
                            .unwrap_or_default();
                        return Err(format!(
                            "an IFUNC symbol {name} (its resolver runs when the object is loaded)"
                        ));
                    }
                }
            }
            // SHT_RELA: an IRELATIVE relocation calls a resolver at load.
            4 => {
                for e in entries(24) {
                    if int(b, e + 8, 8)? & 0xffff_ffff == irelative {
                        return Err(
                            "an IRELATIVE relocation (a resolver that runs when the object is loaded)"
                                .into(),
                        );
                    }
                }
            }
            // SHT_DYNAMIC.
            6 => {
                for e in entries(16) {
                    let tag = int(b, e, 8)?;
                    if !DYNAMIC_TAGS.contains(&tag) {
                        return Err(format!(
                            "dynamic entry {tag:#x} (DT_INIT, DT_INIT_ARRAY and their kind run code at load)"
                        ));
                    }
                    if tag == 1 {
                        let strtab = sections.get(s.link).map_or(0, |st| st.offset);
                        let lib = cstr(b, strtab + int(b, e + 8, 8)? as usize);
                        if !NEEDED.contains(&lib.as_str()) {
                            return Err(format!(
                                "it needs {lib}, whose constructors would run when it is loaded"
                            ));
                        }
                    }
                    if tag == 0 {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf_is_refused() {
        assert!(load_time_code(b"#!/bin/sh\n").is_err());
        assert!(load_time_code(b"").is_err());
    }
}
