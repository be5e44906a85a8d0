//! Patch files laid out as `git format-patch` lays them out, and the cover
//! letter libgit2 does not write.

use super::def::PatchDef;
use super::{Committed, Identity};

/// The `-- ` signature's second line.
pub const SIGNATURE: &str = concat!("gmemforge ", env!("CARGO_PKG_VERSION"));

/// Subject, changelog, trailers (`Fixes:`, `Cc:`), sign-off: the commit
/// message.
pub fn commit_message(def: &PatchDef, id: &Identity, trailers: &[String]) -> String {
    let mut t = String::new();
    for l in trailers {
        t.push_str(l);
        t.push('\n');
    }
    format!(
        "{}\n\n{}\n\n{t}Signed-off-by: {} <{}>\n",
        def.subject, def.changelog, id.name, id.email
    )
}

/// RFC 2822 date, as `git format-patch` prints it.
pub fn rfc2822(time: i64, offset_minutes: i32) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = time + i64::from(offset_minutes) * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.abs();
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        DAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        off / 60,
        off % 60
    )
}

/// `[PATCH v2 1/3]`.
pub fn prefix(reroll: Option<u32>, n: usize, total: usize) -> String {
    let v = reroll.map(|r| format!(" v{r}")).unwrap_or_default();
    format!("[PATCH{v} {n}/{total}]")
}

/// git's file name for a patch: `[vN-]NNNN-<sanitized subject>.patch`,
/// 63 bytes at most in all (measured against git 2.47's format-patch).
pub fn file_name(reroll: Option<u32>, n: usize, subject: &str) -> String {
    let prefix = format!(
        "{}{n:04}-",
        reroll.map(|r| format!("v{r}-")).unwrap_or_default()
    );
    let mut s = String::new();
    for c in subject.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let max = 63usize.saturating_sub(prefix.len() + ".patch".len());
    let mut s: String = s
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(max)
        .collect();
    while s.ends_with('-') || s.ends_with('.') {
        s.pop();
    }
    format!("{prefix}{s}.patch")
}

/// A `Subject:` header folded as git folds headers over 78 columns.
fn subject_header(subject: &str) -> String {
    let mut out = String::from("Subject:");
    let mut width = out.len();
    for word in subject.split(' ') {
        if width + 1 + word.len() > 78 && width > "Subject:".len() {
            out.push_str("\n ");
            width = 1;
        } else {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.len();
    }
    out
}

fn headers(commit: &str, id: &Identity, subject: &str) -> String {
    format!(
        "From {commit} Mon Sep 17 00:00:00 2001\nFrom: {} <{}>\nDate: {}\n{}\n\n",
        id.name,
        id.email,
        rfc2822(id.time, id.offset),
        subject_header(subject)
    )
}

/// One patch file.
pub fn patch_file(
    c: &Committed,
    id: &Identity,
    reroll: Option<u32>,
    n: usize,
    total: usize,
) -> String {
    let body = c
        .message
        .split_once("\n\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    format!(
        "{}{body}---\n{}\n{}-- \n{SIGNATURE}\n\n",
        headers(
            &c.commit.to_string(),
            id,
            &format!("{} {}", prefix(reroll, n, total), c.def.subject)
        ),
        c.stat,
        c.diff
    )
}

/// `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The cover letter's title, from the patches it holds: their subjects'
/// prefixes (`KVM: guest_memfd, x86/mmu:`; `KVM:` alone past two areas)
/// and what they do — `fixes` and `adds` name topics in kernel words;
/// `tests`: the series adds KUnit tests too. Within 75 columns: the tests
/// go first, then topics from the end (`and more`).
pub fn cover_title(subjects: &[&str], fixes: &[&str], adds: &[&str], tests: bool) -> String {
    let mut areas: Vec<&str> = Vec::new();
    for s in subjects {
        let prefix = s.rsplit_once(": ").map_or("KVM", |(p, _)| p);
        let area = prefix.strip_prefix("KVM: ").unwrap_or("");
        if !area.is_empty() && !areas.contains(&area) {
            areas.push(area);
        }
    }
    let prefix = if areas.is_empty() || areas.len() > 2 {
        "KVM".to_owned()
    } else {
        format!("KVM: {}", areas.join(", "))
    };
    let n = fixes.len() + adds.len();
    let phrase = |k: usize, tests: bool| {
        let f: Vec<&str> = fixes.iter().take(k).copied().collect();
        let mut a: Vec<&str> = adds
            .iter()
            .take(k.saturating_sub(fixes.len()))
            .copied()
            .collect();
        if tests {
            a.push("KUnit tests");
        }
        let mut parts = Vec::new();
        if !f.is_empty() {
            parts.push(format!("fix {}", and_list(&f)));
        }
        if !a.is_empty() {
            parts.push(format!("add {}", and_list(&a)));
        }
        let mut p = parts.join("; ");
        if k < n {
            p.push_str(", and more");
        }
        let mut c = p.chars();
        let p = c
            .next()
            .map(|h| h.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default();
        format!("{prefix}: {p}")
    };
    if n == 0 && !tests {
        return format!("{prefix}: Update guest_memfd");
    }
    let mut tries = vec![phrase(n, tests)];
    tries.extend((1..=n).rev().map(|k| phrase(k, false)));
    tries
        .iter()
        .find(|t| t.len() <= 75)
        .cloned()
        .unwrap_or_else(|| phrase(n.min(1), n == 0 && tests))
}

/// A heading and its items: a line each (a subject), with an optional
/// indented detail.
pub struct Section {
    /// The heading.
    pub heading: String,
    /// (line, detail).
    pub items: Vec<(String, Option<String>)>,
}

/// What the cover letter says besides the patches.
pub struct Cover<'a> {
    /// Title after `[PATCH 0/N]`.
    pub title: &'a str,
    /// Opening paragraphs.
    pub summary: &'a str,
    /// Per-patch notes: (shortlog, why it is in).
    pub notes: &'a [(String, String)],
    /// Lists after the notes: patches not written, already applied, not
    /// needed; the operations reviewed.
    pub sections: &'a [Section],
    /// `base-commit:` (git sources) or a line naming the non-git base.
    pub base: &'a str,
    /// Diffstat of the whole series.
    pub stat: &'a str,
}

/// `text` re-wrapped at 75 columns (the changelog width), every line
/// prefixed with `indent`; words longer than a line stay whole.
pub fn wrap75(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > 75 {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `0000-cover-letter.patch`.
pub fn cover_letter(
    cv: &Cover<'_>,
    last_commit: &str,
    id: &Identity,
    reroll: Option<u32>,
    total: usize,
) -> String {
    let mut body = String::new();
    for para in cv.summary.split("\n\n") {
        body.push_str(&wrap75(para, ""));
        body.push('\n');
    }
    // Subjects run up to 75 columns: they stand unindented, in the
    // shortlog below; the notes refer to patches by number.
    for (i, (_, why)) in cv.notes.iter().enumerate() {
        body.push_str(&wrap75(&format!("Patch {}/{total}: {why}", i + 1), ""));
        body.push('\n');
    }
    for s in cv.sections {
        body.push_str(&wrap75(&s.heading, ""));
        body.push('\n');
        for (line, detail) in &s.items {
            // Subjects stand whole (they are at most 75 columns); other
            // lines are prose.
            if line.len() <= 75 {
                body.push_str(&format!("{line}\n"));
            } else {
                body.push_str(&wrap75(line, ""));
            }
            if let Some(d) = detail {
                body.push_str(&wrap75(d, "  "));
            }
        }
        body.push('\n');
    }
    body.push_str(&format!("{} ({}):\n", id.name, total));
    for (subject, _) in cv.notes {
        body.push_str(&format!("  {subject}\n"));
    }
    format!(
        "{}{body}\n{}\n{}\n-- \n{SIGNATURE}\n\n",
        headers(
            last_commit,
            id,
            &format!("{} {}", prefix(reroll, 0, total), cv.title)
        ),
        cv.stat,
        cv.base
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_say_what_the_patches_do() {
        let s = [
            "KVM: guest_memfd: Clamp the invalidation range to each binding",
            "KVM: x86/mmu: Pass the full 64-bit error code to kvm_mmu_do_page_fault()",
        ];
        assert_eq!(
            cover_title(&s, &["the invalidation range", "private faults"], &[], true),
            "KVM: guest_memfd, x86/mmu: Fix the invalidation range and private faults"
        );
        assert_eq!(
            cover_title(&s[..1], &["the invalidation range"], &[], true),
            "KVM: guest_memfd: Fix the invalidation range; add KUnit tests"
        );
        assert_eq!(
            cover_title(&s[..1], &[], &[], true),
            "KVM: guest_memfd: Add KUnit tests"
        );
        let t = cover_title(
            &[
                "KVM: guest_memfd: A",
                "KVM: SEV: B",
                "KVM: x86: C",
                "KVM: D",
            ],
            &[
                "the invalidation range",
                "the prepare hook",
                "the free hook",
            ],
            &["KVM_PRE_FAULT_MEMORY"],
            true,
        );
        assert!(t.starts_with("KVM: Fix the invalidation range"), "{t}");
        assert!(t.ends_with(", and more") && t.len() <= 75, "{t}");
    }

    #[test]
    fn wraps_prose_at_75() {
        let w = wrap75(&"word ".repeat(40), "  ");
        assert!(
            w.lines().all(|l| l.len() <= 75 && l.starts_with("  word")),
            "{w}"
        );
    }

    #[test]
    fn dates_and_names_follow_git() {
        assert_eq!(rfc2822(0, 0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_767_225_600, 60), "Thu, 1 Jan 2026 01:00:00 +0100");
        assert_eq!(
            rfc2822(1_700_000_000, -300),
            "Tue, 14 Nov 2023 17:13:20 -0500"
        );
        // The names git 2.47 gives these subjects.
        let s = "KVM: guest_memfd: Clamp the invalidation range to each binding";
        assert_eq!(
            file_name(None, 1, s),
            "0001-KVM-guest_memfd-Clamp-the-invalidation-range-to-each.patch"
        );
        assert_eq!(
            file_name(Some(2), 1, s),
            "v2-0001-KVM-guest_memfd-Clamp-the-invalidation-range-to-e.patch"
        );
        assert_eq!(
            file_name(
                None,
                2,
                "KVM: x86/mmu: Pass the full 64-bit error code to kvm_mmu_do_page_fault()"
            ),
            "0002-KVM-x86-mmu-Pass-the-full-64-bit-error-code-to-kvm_m.patch"
        );
        assert_eq!(
            file_name(Some(2), 3, "KVM: x86: Fix it"),
            "v2-0003-KVM-x86-Fix-it.patch"
        );
        assert_eq!(prefix(Some(2), 1, 3), "[PATCH v2 1/3]");
    }
}
