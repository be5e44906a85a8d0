//! The patch series: definitions → edits on the tree's files → commits in a
//! private repository → `git format-patch`-style files and a cover letter.
//!
//! The user's repository is only ever read: the private repository (a
//! temporary bare one) borrows its objects through an alternate, and all
//! commits live there, unreferenced, until the files are written.

pub mod anchor;
pub mod def;
pub mod edit;
pub mod email;
pub mod fixes;
pub mod merge;
pub mod plan;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use git2::{FileMode, Oid, Repository, Signature, Time, build::TreeUpdateBuilder};

pub use def::PatchDef;

/// What the series is based on.
#[derive(Debug, Clone)]
pub enum Base {
    /// A commit of the user's repository.
    Git {
        /// The repository (its objects are borrowed, read-only).
        repo: PathBuf,
        /// The base commit.
        commit: String,
    },
    /// Files read from a directory or tarball; a private base commit holds
    /// them.
    Files {
        /// Path → contents.
        files: BTreeMap<String, String>,
    },
}

/// One patch, placed: the full new text of every file it touches.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its definition.
    pub def: PatchDef,
    /// Path → new contents.
    pub files: BTreeMap<String, String>,
}

/// Who sends the series, and when.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// Offset from UTC in minutes.
    pub offset: i32,
}

/// A series failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesError(pub String);

impl fmt::Display for SeriesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SeriesError {}

impl From<git2::Error> for SeriesError {
    fn from(e: git2::Error) -> Self {
        SeriesError(format!("git: {}", e.message()))
    }
}

/// A committed patch.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The patch's definition.
    pub def: PatchDef,
    /// Its commit in the private repository.
    pub commit: Oid,
    /// Full message (subject, changelog, sign-off).
    pub message: String,
    /// `git diff --stat` of the commit.
    pub stat: String,
    /// The diff.
    pub diff: String,
    /// What kept its `Fixes:` tag from being found, if anything (said on
    /// stdout, never in the email).
    pub fixes_gap: Option<String>,
}

/// The private repository a series is built in; removed on drop.
pub struct Workspace {
    dir: PathBuf,
    repo: Repository,
    /// The user's repository, for a git base (its tags are read).
    user: Option<PathBuf>,
    /// The base commit.
    pub base: Oid,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signature(id: &Identity) -> Result<Signature<'static>, SeriesError> {
    Ok(Signature::new(
        &id.name,
        &id.email,
        &Time::new(id.time, id.offset),
    )?)
}

impl Workspace {
    /// Creates the private repository over `base`.
    pub fn new(base: &Base, id: &Identity) -> Result<Workspace, SeriesError> {
        let dir = std::env::temp_dir().join(format!(
            "gmemforge-series-{}-{:x}",
            std::process::id(),
            id.time
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = Repository::init_bare(&dir)?;
        let user = match base {
            Base::Git { repo: user, .. } => Some(user.clone()),
            Base::Files { .. } => None,
        };
        let base = match base {
            Base::Git { repo: user, commit } => {
                // Read-only: the user's objects directory as an alternate.
                let user = Repository::open(user)?;
                repo.odb()?
                    .add_disk_alternate(&user.path().join("objects").display().to_string())?;
                repo.find_commit(Oid::from_str(commit)?)?.id()
            }
            Base::Files { files } => {
                let sig =
                    Signature::new("gmemforge", "gmemforge@localhost", &Time::new(id.time, 0))?;
                let empty = repo.find_tree(repo.treebuilder(None)?.write()?)?;
                let mut b = TreeUpdateBuilder::new();
                for (path, text) in files {
                    b.upsert(path.as_str(), repo.blob(text.as_bytes())?, FileMode::Blob);
                }
                let tree = repo.find_tree(b.create_updated(&repo, &empty)?)?;
                repo.commit(
                    None,
                    &sig,
                    &sig,
                    "Base: the files read from the tree\n",
                    &tree,
                    &[],
                )?
            }
        };
        Ok(Workspace {
            dir,
            repo,
            user,
            base,
        })
    }

    /// The base commit's version of `path`.
    pub fn base_file(&self, path: &str) -> Option<String> {
        let tree = self.repo.find_commit(self.base).ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = self.repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }

    /// Commits `steps` one on top of the other.
    pub fn commit(&self, steps: &[Step], id: &Identity) -> Result<Vec<Committed>, SeriesError> {
        let sig = signature(id)?;
        let mut parent = self.repo.find_commit(self.base)?;
        let mut out = Vec::new();
        for step in steps {
            let mut b = TreeUpdateBuilder::new();
            for (path, text) in &step.files {
                b.upsert(
                    path.as_str(),
                    self.repo.blob(text.as_bytes())?,
                    FileMode::Blob,
                );
            }
            let parent_tree = parent.tree()?;
            let tree = self
                .repo
                .find_tree(b.create_updated(&self.repo, &parent_tree)?)?;
            let mut opts = git2::DiffOptions::new();
            opts.context_lines(3);
            let diff =
                self.repo
                    .diff_tree_to_tree(Some(&parent_tree), Some(&tree), Some(&mut opts))?;
            let ours: Vec<Oid> = out.iter().map(|c: &Committed| c.commit).collect();
            let (trailers, fixes_gap) = match &self.user {
                Some(user) => match fixes::trailers(&self.repo, user, &parent, &diff, &ours) {
                    Ok(t) => (t, None),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                },
                None => (Vec::new(), None),
            };
            let message = email::commit_message(&step.def, id, &trailers);
            let oid = self
                .repo
                .commit(None, &sig, &sig, &message, &tree, &[&parent])?;
            let stat = diffstat(&diff)?;
            let mut text = Vec::new();
            diff.print(git2::DiffFormat::Patch, |_, _, line| {
                if matches!(line.origin(), '+' | '-' | ' ') {
                    text.push(line.origin() as u8);
                }
                text.extend_from_slice(line.content());
                true
            })?;
            out.push(Committed {
                def: step.def.clone(),
                commit: oid,
                message,
                stat,
                diff: String::from_utf8_lossy(&text).into_owned(),
                fixes_gap,
            });
            parent = self.repo.find_commit(oid)?;
        }
        Ok(out)
    }

    /// `git diff --stat` from the base to `commit`.
    pub fn total_stat(&self, commit: Oid) -> Result<String, SeriesError> {
        let base = self.repo.find_commit(self.base)?.tree()?;
        let tip = self.repo.find_commit(commit)?.tree()?;
        let diff = self.repo.diff_tree_to_tree(Some(&base), Some(&tip), None)?;
        diffstat(&diff)
    }
}

/// `git diff --stat --summary` as `git format-patch` prints it (width 72).
///
/// libgit2's own stat scales the +/- graph differently from git once it
/// has to shrink, so the files would not be git's byte for byte; this
/// follows git's show_stats(): the graph gets what the name and the count
/// leave of 72 columns (at most 3/8 of them when space is short), and each
/// file's bar is scaled with 1 + n * (width - 1) / max.
pub fn diffstat(diff: &git2::Diff<'_>) -> Result<String, SeriesError> {
    struct File {
        name: String,
        add: usize,
        del: usize,
        mode: Option<(git2::Delta, u32)>,
    }
    let mut files = Vec::new();
    for i in 0..diff.deltas().len() {
        let Some(patch) = git2::Patch::from_diff(diff, i)? else {
            continue;
        };
        let (_, add, del) = patch.line_stats()?;
        let delta = patch.delta();
        let file = delta.new_file().path().or_else(|| delta.old_file().path());
        let mode = match delta.status() {
            git2::Delta::Added => Some((git2::Delta::Added, u32::from(delta.new_file().mode()))),
            git2::Delta::Deleted => {
                Some((git2::Delta::Deleted, u32::from(delta.old_file().mode())))
            }
            _ => None,
        };
        files.push(File {
            name: file.map(|p| p.display().to_string()).unwrap_or_default(),
            add,
            del,
            mode,
        });
    }
    let max_change = files.iter().map(|f| f.add + f.del).max().unwrap_or(0);
    let max_len = files.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let width = 72usize;
    let number_width = max_change.to_string().len();
    let mut graph_width = max_change;
    let mut name_width = max_len;
    if name_width + number_width + 6 + graph_width > width {
        let room = (width * 3 / 8).saturating_sub(number_width + 6);
        if graph_width > room {
            graph_width = room.max(6);
        }
        if name_width > width - number_width - 6 - graph_width {
            name_width = width - number_width - 6 - graph_width;
        } else {
            graph_width = width - number_width - 6 - name_width;
        }
    }
    let scale = |n: usize| {
        if n == 0 {
            0
        } else {
            1 + n * (graph_width - 1) / max_change
        }
    };
    let mut out = String::new();
    for f in &files {
        let (mut add, mut del) = (f.add, f.del);
        if graph_width <= max_change {
            let mut total = scale(add + del);
            if total < 2 && add > 0 && del > 0 {
                total = 2;
            }
            if add < del {
                add = scale(add);
                del = total - add;
            } else {
                del = scale(del);
                add = total - del;
            }
        }
        let changed = f.add + f.del;
        out.push_str(&format!(
            " {:<name_width$} | {:>number_width$}{}{}{}\n",
            f.name,
            changed,
            if changed > 0 { " " } else { "" },
            "+".repeat(add),
            "-".repeat(del)
        ));
    }
    let (adds, dels) = files
        .iter()
        .fold((0, 0), |(a, d), f| (a + f.add, d + f.del));
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            one.to_owned()
        } else {
            many.to_owned()
        }
    };
    out.push_str(&format!(
        " {} {} changed",
        files.len(),
        plural(files.len(), "file", "files")
    ));
    if adds > 0 {
        out.push_str(&format!(
            ", {adds} {}(+)",
            plural(adds, "insertion", "insertions")
        ));
    }
    if dels > 0 {
        out.push_str(&format!(
            ", {dels} {}(-)",
            plural(dels, "deletion", "deletions")
        ));
    }
    out.push('\n');
    for f in &files {
        match f.mode {
            Some((git2::Delta::Added, m)) => {
                out.push_str(&format!(" create mode {m:o} {}\n", f.name))
            }
            Some((_, m)) => out.push_str(&format!(" delete mode {m:o} {}\n", f.name)),
            None => {}
        }
    }
    Ok(out)
}
