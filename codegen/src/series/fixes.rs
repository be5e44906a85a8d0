//! The kernel's trailers for a fix: `Fixes: <sha12> ("subject")` naming the
//! commit that brought the lines a patch removes, and
//! `Cc: stable@vger.kernel.org` when that commit is in a released tag.
//!
//! Read only: the lines are blamed in the private repository (whose
//! objects include the user's through the alternate), the tags read from
//! the user's repository; nothing is written to either.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{BlameOptions, Commit, Diff, Oid, Repository};

use super::SeriesError;

/// The stable list's address, as `Cc:` names it.
pub const STABLE: &str = "stable@vger.kernel.org";

/// Path → the line numbers (in the old file) a diff removes.
pub fn removed_lines(diff: &Diff<'_>) -> Result<BTreeMap<String, Vec<usize>>, SeriesError> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    diff.foreach(
        &mut |_, _| true,
        None,
        None,
        Some(&mut |delta, _, line| {
            if line.origin() == '-' {
                if let (Some(path), Some(n)) = (delta.old_file().path(), line.old_lineno()) {
                    out.entry(path.display().to_string())
                        .or_default()
                        .push(n as usize);
                }
            }
            true
        }),
    )?;
    Ok(out)
}

/// The commits (outside `ours`, the series' own) that last changed the
/// lines `diff` removes, blamed at `parent`.
pub fn blamed(
    repo: &Repository,
    parent: &Commit<'_>,
    diff: &Diff<'_>,
    ours: &[Oid],
) -> Result<Vec<Oid>, SeriesError> {
    let mut found = Vec::new();
    for (path, lines) in removed_lines(diff)? {
        let (Some(min), Some(max)) = (lines.iter().min(), lines.iter().max()) else {
            continue;
        };
        let mut opts = BlameOptions::new();
        opts.newest_commit(parent.id())
            .min_line(*min)
            .max_line(*max);
        let blame = repo.blame_file(Path::new(&path), Some(&mut opts))?;
        for n in lines {
            if let Some(h) = blame.get_line(n) {
                let c = h.final_commit_id();
                if !c.is_zero() && !ours.contains(&c) && !found.contains(&c) {
                    found.push(c);
                }
            }
        }
    }
    Ok(found)
}

/// The newest of `commits`: the one descending from the others (by
/// committer time where neither descends from the other).
fn newest(repo: &Repository, commits: &[Oid]) -> Result<Option<Oid>, SeriesError> {
    let mut best: Option<Oid> = None;
    for &c in commits {
        best = Some(match best {
            None => c,
            Some(b) if repo.graph_descendant_of(c, b)? => c,
            Some(b) if repo.graph_descendant_of(b, c)? => b,
            Some(b) => {
                let time = |o: Oid| repo.find_commit(o).map(|c| c.time().seconds());
                if time(c)? > time(b)? { c } else { b }
            }
        });
    }
    Ok(best)
}

/// Whether `commit` is in a released tag of `user` (`v` and a digit: v6.12,
/// v6.13-rc1), that is, the tag's commit is it or descends from it.
pub fn released(user: &Repository, commit: Oid) -> Result<bool, SeriesError> {
    for r in user.references_glob("refs/tags/v*")? {
        let r = r?;
        let is_release = r
            .shorthand()
            .and_then(|n| n.strip_prefix('v'))
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
        if !is_release {
            continue;
        }
        let Ok(tagged) = r.peel_to_commit() else {
            continue;
        };
        if tagged.id() == commit || user.graph_descendant_of(tagged.id(), commit)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The `Fixes:` line naming `commit`, as checkpatch wants it.
pub fn fixes_line(repo: &Repository, commit: Oid) -> Result<String, SeriesError> {
    let c = repo.find_commit(commit)?;
    let sha = commit.to_string();
    Ok(format!(
        "Fixes: {} (\"{}\")",
        &sha[..12],
        c.summary().unwrap_or_default()
    ))
}

/// The trailers of the patch `parent` → `diff`: none when it removes no
/// line of the base's history (a patch that only adds); else `Fixes:` for
/// the newest commit that brought a removed line, and `Cc: stable` when
/// that commit is released.
pub fn trailers(
    repo: &Repository,
    user: &Path,
    parent: &Commit<'_>,
    diff: &Diff<'_>,
    ours: &[Oid],
) -> Result<Vec<String>, SeriesError> {
    let found = blamed(repo, parent, diff, ours)?;
    let Some(culprit) = newest(repo, &found)? else {
        return Ok(Vec::new());
    };
    let mut out = vec![fixes_line(repo, culprit)?];
    if released(&Repository::open(user)?, culprit)? {
        out.push(format!("Cc: {STABLE}"));
    }
    Ok(out)
}
