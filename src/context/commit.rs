//! A build context read from a git commit: the same entries, decided by the
//! same rules, as the walk of a checkout of that commit gives. Modes come
//! from git (the executable bit, symlinks); a submodule or a Git LFS
//! pointer among the selected entries is an error, since a checkout would
//! hold other bytes than the commit's blob.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::{Entry, Kind, Selection, add_missing_parents};
use crate::error::{Error, Result};
use crate::tree::{self, Commit};

/// The selected entries of the context `root` (an absolute path below the
/// commit's work tree), sorted by path.
pub fn walk(commit: &Commit, root: &Path, selection: &Selection) -> Result<Vec<Entry>> {
    // The same tree under the same rules gives the same entries: commits
    // walked in one run (history, cleanup) share the unchanged contexts.
    let key = (root.to_path_buf(), selection.fingerprint);
    let id = commit.tree_id(root);
    if let Some(entries) = id.and_then(|id| commit.walked(&key, id)) {
        return Ok(entries.as_ref().clone());
    }
    let entries = walk_tree(commit, root, selection, id)?;
    if let Some(id) = id {
        commit.remember_walk(key, id, std::sync::Arc::new(entries.clone()));
    }
    Ok(entries)
}

/// The walk itself; `id` is the context's tree when it was found already.
fn walk_tree(
    commit: &Commit,
    root: &Path,
    selection: &Selection,
    id: Option<gix::ObjectId>,
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut descended = BTreeSet::new();
    let mut decided: HashMap<String, Vec<bool>> = HashMap::new();
    // Directories to read: the path below the context, and the tree's id
    // (the context's own tree, when not known, is found by its path).
    let mut stack: Vec<(String, Option<gix::ObjectId>)> = vec![(String::new(), id)];
    let matcher = &selection.matcher;
    while let Some((dir, id)) = stack.pop() {
        let path = if dir.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&dir)
        };
        let children = match id {
            Some(id) => commit.tree_children(id),
            None => commit.children(&path),
        };
        let children = children.map_err(|e| {
            Error::user(format!(
                "{}{}: {e}",
                crate::paths::Shown(&path),
                commit_at(commit)
            ))
        })?;
        for child in children {
            let name = String::from_utf8_lossy(&child.name);
            let utf8 = std::str::from_utf8(&child.name).is_ok();
            let rel = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            let excluded = !matcher.is_empty() && {
                let decision = matcher.decide(&rel, decided.get(&dir).map(Vec::as_slice));
                if child.kind == tree::Kind::Dir {
                    decided.insert(rel.clone(), decision.matched);
                }
                decision.excluded
            };
            let abs = root.join(&rel);
            if excluded {
                if child.kind == tree::Kind::Dir && matcher.must_descend(&rel) {
                    descended.insert(rel.clone());
                    stack.push((rel, Some(child.id)));
                }
                continue;
            }
            let bad = |what: &str| Err(Error::file(&abs, format!("{what}{}", commit_at(commit))));
            if !utf8 {
                return bad("file name is not valid UTF-8; rename it or add it to .dockerignore");
            }
            let entry = match child.kind {
                tree::Kind::Dir => {
                    stack.push((rel.clone(), Some(child.id)));
                    Entry {
                        path: rel,
                        kind: Kind::Dir,
                        executable: false,
                        digest: None,
                        target: None,
                    }
                }
                tree::Kind::Symlink => {
                    let target = commit.blob(child.id).map_err(|e| Error::io(&abs, e))?;
                    let Ok(target) = String::from_utf8(target) else {
                        return bad("symlink target is not valid UTF-8");
                    };
                    Entry {
                        path: rel,
                        kind: Kind::Symlink,
                        executable: false,
                        digest: Some(*blake3::hash(target.as_bytes()).as_bytes()),
                        target: Some(target),
                    }
                }
                tree::Kind::File { executable } => {
                    let (digest, lfs) = commit
                        .blob_digest(child.id)
                        .map_err(|e| Error::io(&abs, e))?;
                    if lfs {
                        return bad(
                            "is a Git LFS pointer; a checkout with LFS holds other bytes, so its tag cannot be computed from git (add it to .dockerignore, or run without --rev on a checkout)",
                        );
                    }
                    Entry {
                        path: rel,
                        kind: Kind::File,
                        executable,
                        digest: Some(digest),
                        target: None,
                    }
                }
                tree::Kind::Submodule => {
                    return bad(
                        "is a git submodule; a checkout would hold its files, which --rev does not read (add it to .dockerignore, or run without --rev on a checkout)",
                    );
                }
            };
            entries.push(entry);
        }
    }
    add_missing_parents(&mut entries, &descended);
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

fn commit_at(commit: &Commit) -> String {
    format!(" (at {})", commit.rev)
}
