//! Units: the C the checker compiles for one implementation.
//!
//! A unit is a list of kernel functions in dependency order. The builtin
//! unit of a profile is `templates/common` plus `templates/<profile>` with
//! every placeholder expanded from the model; a mutant is a builtin unit with
//! some functions replaced by a known-wrong version from
//! `kernel-patches/mutants/<name>.c`. The text of a carried function here is
//! byte for byte what a patch carries.

use std::fmt;

use gmem_reference::Profile;

use crate::template::{Function, TemplateError, expand_file};
use crate::translate::{Rules, TranslateError};

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../kernel-patches/", $path)))),*]
    };
}

/// Every template file, embedded so the binary works from anywhere. A test
/// checks this list against the directory.
pub const TEMPLATE_FILES: &[(&str, &str)] = embed!(
    "templates/common/kvm_main.c",
    "templates/common/sev.c",
    "templates/upstream/guest_memfd.c",
    "templates/upstream/mmu.c",
    "templates/upstream/mmu_internal.h",
    "templates/upstream/svm.c",
    "templates/gmem-solo-2023/guest_mem.c",
    "templates/gmem-solo-2023/mmu.c",
    "templates/gmem-solo-2023/mmu_internal.h",
    "templates/gmem-solo-2023/svm.c",
);

/// Every mutant file.
pub const MUTANT_FILES: &[(&str, &str)] = embed!(
    "mutants/solo-2023-range.c",
    "mutants/no-pgoff.c",
    "mutants/u32-error-code.c",
    "mutants/rmp-under-mmu-lock.c",
    "mutants/u32-rule.c",
    "mutants/prefault-ignores-rule.c",
    "mutants/upstream-range.c",
    "mutants/prepare-unwired.c",
    "mutants/prepare-every-fault.c",
    "mutants/free-folio-unregistered.c",
    "mutants/bind-past-eof.c",
    "mutants/prepare-2m-unchecked.c",
    "mutants/invalidate-no-psmash.c",
    "mutants/bind-loff-wrap.c",
    "mutants/commit-einval.c",
);

/// Kernel files in the order their functions must appear (callees first).
const FILE_ORDER: &[&str] = &[
    "mmu_internal.h",
    "guest_memfd.c",
    "guest_mem.c",
    "mmu.c",
    "svm.c",
    "sev.c",
    "kvm_main.c",
];

/// Why a unit cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodegenError {
    /// A rule does not translate.
    Rule(TranslateError),
    /// A template is malformed.
    Template(TemplateError),
    /// No such mutant.
    UnknownMutant(String),
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodegenError::Rule(e) => write!(f, "reference/src/rules.rs: {e}"),
            CodegenError::Template(e) => write!(f, "kernel-patches/{e}"),
            CodegenError::UnknownMutant(m) => {
                write!(f, "no mutant `{m}`; known: {}", mutant_names().join(", "))
            }
        }
    }
}

impl std::error::Error for CodegenError {}

/// The C of one implementation under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `builtin:<profile>` or `mutant:<name>`.
    pub name: String,
    /// The struct shapes and hook signatures it is written for.
    pub profile: Profile,
    /// Its functions, callees first.
    pub functions: Vec<Function>,
    /// What a mutant breaks (empty for builtin units).
    pub description: String,
}

impl Unit {
    /// Whether the unit defines `name`.
    pub fn defines(&self, name: &str) -> bool {
        self.functions.iter().any(|f| f.name == name)
    }

    /// The unit as one C file.
    pub fn text(&self) -> String {
        let mut s = format!(
            "// SPDX-License-Identifier: GPL-2.0-only\n/* gmemforge unit {} */\n",
            self.name
        );
        for f in &self.functions {
            s.push('\n');
            s.push_str(&f.text);
        }
        s
    }
}

fn file_rank(path: &str) -> usize {
    let base = path.rsplit('/').next().unwrap_or(path);
    FILE_ORDER
        .iter()
        .position(|f| *f == base)
        .unwrap_or(FILE_ORDER.len())
}

fn functions_of(prefixes: &[&str], rules: &Rules) -> Result<Vec<Function>, CodegenError> {
    let mut files: Vec<&(&str, &str)> = TEMPLATE_FILES
        .iter()
        .filter(|(p, _)| prefixes.iter().any(|pre| p.starts_with(pre)))
        .collect();
    files.sort_by_key(|(p, _)| {
        (
            file_rank(p),
            prefixes.iter().position(|pre| p.starts_with(pre)),
        )
    });
    let mut out = Vec::new();
    for (path, text) in files {
        out.extend(expand_file(path, text, rules).map_err(CodegenError::Template)?);
    }
    Ok(out)
}

/// The builtin unit of `profile`: what the series writes into such a tree.
pub fn builtin(profile: Profile) -> Result<Unit, CodegenError> {
    let rules = Rules::load().map_err(CodegenError::Rule)?;
    let dir = format!("templates/{}/", profile.name());
    let functions = functions_of(&[dir.as_str(), "templates/common/"], &rules)?;
    Ok(Unit {
        name: format!("builtin:{}", profile.name()),
        profile,
        functions,
        description: String::new(),
    })
}

/// Names of the known mutants.
pub fn mutant_names() -> Vec<&'static str> {
    MUTANT_FILES
        .iter()
        .map(|(p, _)| p.trim_start_matches("mutants/").trim_end_matches(".c"))
        .collect()
}

/// Each known mutant with what it breaks, from its file's `//!` lines:
/// the one list `--help`, the README test and error messages use.
pub fn mutant_list() -> Vec<(&'static str, String)> {
    mutant_names()
        .into_iter()
        .zip(MUTANT_FILES)
        .map(|(name, (_, text))| {
            let about = text
                .lines()
                .take_while(|l| l.starts_with("//! "))
                .filter_map(|l| l.strip_prefix("//! "))
                .filter(|l| !l.trim().starts_with("profile:"))
                .collect::<Vec<_>>()
                .join(" ");
            (name, about)
        })
        .collect()
}

/// Mutant `name`: its profile's builtin unit with the mutant's functions
/// swapped in. The file starts with `//! profile: <profile>` and `//!`
/// lines describing the bug.
pub fn mutant(name: &str) -> Result<Unit, CodegenError> {
    let path = format!("mutants/{name}.c");
    let Some((_, text)) = MUTANT_FILES.iter().find(|(p, _)| *p == path) else {
        return Err(CodegenError::UnknownMutant(name.to_owned()));
    };
    let terr = |line: usize, message: &str| {
        CodegenError::Template(TemplateError {
            file: path.clone(),
            line,
            message: message.into(),
        })
    };
    let mut profile = None;
    let mut description = Vec::new();
    let mut body = String::new();
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("//! ") {
            Some(meta) => match meta.trim().strip_prefix("profile: ") {
                Some(p) => {
                    profile = Profile::ALL.into_iter().find(|x| x.name() == p);
                }
                None => description.push(meta.trim().to_owned()),
            },
            // Keep line numbers of the body right in template errors.
            None => body.push_str(line),
        }
        if line.starts_with("//! ") {
            body.push('\n');
        }
    }
    let profile = profile.ok_or_else(|| {
        terr(
            1,
            "first line must be `//! profile: <upstream|gmem-solo-2023>`",
        )
    })?;
    let rules = Rules::load().map_err(CodegenError::Rule)?;
    let overrides = expand_file(&path, &body, &rules).map_err(CodegenError::Template)?;
    let mut unit = builtin(profile)?;
    for o in overrides {
        match unit.functions.iter_mut().find(|f| f.name == o.name) {
            Some(f) => *f = o,
            None => {
                return Err(terr(
                    1,
                    &format!("`{}` is not in the builtin {} unit", o.name, profile.name()),
                ));
            }
        }
    }
    unit.name = format!("mutant:{name}");
    unit.description = description.join(" ");
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed_dir(dir: &str, listed: &[(&str, &str)]) {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../kernel-patches/");
        let mut on_disk = Vec::new();
        let mut stack = vec![format!("{root}{dir}")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("readable") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p.display().to_string());
                } else {
                    on_disk.push(p.display().to_string().trim_start_matches(root).to_owned());
                }
            }
        }
        on_disk.sort();
        let mut names: Vec<String> = listed.iter().map(|(p, _)| (*p).to_owned()).collect();
        names.sort();
        assert_eq!(on_disk, names, "embedded list matches kernel-patches/{dir}");
    }

    #[test]
    fn every_template_and_mutant_is_embedded() {
        listed_dir("templates", TEMPLATE_FILES);
        listed_dir("mutants", MUTANT_FILES);
    }

    #[test]
    fn builtin_units_expand_every_placeholder() {
        for p in Profile::ALL {
            let u = builtin(p).unwrap_or_else(|e| panic!("{e}"));
            let text = u.text();
            assert!(!text.contains("@{") && !text.contains("//@"), "{text}");
            assert!(u.defines("kvm_gmem_invalidate_begin") && u.defines("sev_gmem_invalidate"));
            assert!(text.contains("max(pgoff, start)"), "{text}");
        }
    }

    #[test]
    fn mutants_replace_functions() {
        for m in mutant_names() {
            let u = mutant(m).unwrap_or_else(|e| panic!("{e}"));
            let b = builtin(u.profile).expect("builtin");
            assert_ne!(u.text(), b.text(), "{m} changes something");
            assert!(!u.description.is_empty(), "{m} says what it breaks");
        }
        assert!(matches!(
            mutant("nope"),
            Err(CodegenError::UnknownMutant(_))
        ));
    }
}
