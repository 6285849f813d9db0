//! The build context tar, made from exactly the entries that were hashed,
//! with normalised metadata: files 0644 or 0755 (by the executable bit),
//! directories 0755, uid/gid 0, no owner names, a fixed mtime. What was
//! hashed is what the builder receives; a file that changed since it was
//! hashed is an error, not a silent mismatch.

use std::io::{Read, Write};
use std::path::Path;

use super::verified::{VerifiedFile, to_error};
use crate::context::{Entry, Kind};
use crate::error::{Error, Result};

/// The mtime of every entry: 2000-01-01T00:00:00Z, far from 0 so that no
/// tool mistakes it for "unset".
pub const MTIME: u64 = 946_684_800;

/// Where a Dockerfile that lies outside the context goes in the tar. Like the
/// docker CLI, tagsmith adds it under a hidden name and lists that name in
/// the tar's `.dockerignore`, so the engine removes it before the build.
pub fn outside_dockerfile_name(dockerfile: &[u8]) -> String {
    format!(".dockerfile.{}", &blake3::hash(dockerfile).to_hex()[..20])
}

/// Writes the context of `entries` (relative to `root`) as a tar to `out`.
/// `outside_dockerfile` is the Dockerfile's bytes when it is not in the context.
pub fn write(
    root: &Path,
    entries: &[Entry],
    outside_dockerfile: Option<&[u8]>,
    out: impl Write,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let io = |e: std::io::Error| Error::internal(format!("writing the build context: {e}"));
    let extra = outside_dockerfile.map(|df| (outside_dockerfile_name(df), df));
    let mut wrote_ignore = false;
    for entry in entries {
        let path = root.join(&entry.path);
        match entry.kind {
            Kind::Dir => {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut h, format!("{}/", entry.path), std::io::empty())
                    .map_err(io)?;
            }
            Kind::Symlink => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                let target = entry.target.as_deref().unwrap_or_default();
                tar.append_link(&mut h, &entry.path, target).map_err(io)?;
            }
            Kind::File => {
                let digest = entry.digest.as_ref().expect("files have digests");
                let mut file = VerifiedFile::open(&path, digest)?;
                let mode = if entry.executable { 0o755 } else { 0o644 };
                if let (".dockerignore", Some((name, _))) = (entry.path.as_str(), &extra) {
                    let mut data = Vec::new();
                    file.read_to_end(&mut data).map_err(|e| to_error(e, io))?;
                    data.extend_from_slice(format!("\n{name}\n").as_bytes());
                    wrote_ignore = true;
                    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
                    tar.append_data(&mut h, &entry.path, data.as_slice())
                        .map_err(io)?;
                    continue;
                }
                // Streamed: the header promises the size at open, and the
                // reader fails (the archive with it) if the file differs.
                let mut h = header(tar::EntryType::Regular, mode, file.size());
                tar.append_data(&mut h, &entry.path, &mut file)
                    .map_err(|e| to_error(e, io))?;
            }
        }
    }
    if let Some((name, bytes)) = &extra {
        let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        tar.append_data(&mut h, name, *bytes).map_err(io)?;
        if !wrote_ignore {
            let ignore = format!("{name}\n.dockerignore\n");
            let mut h = header(tar::EntryType::Regular, 0o644, ignore.len() as u64);
            tar.append_data(&mut h, ".dockerignore", ignore.as_bytes())
                .map_err(io)?;
        }
    }
    tar.into_inner().map_err(io)?.flush().map_err(io)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{DigestCache, Selection, walk};
    use std::fs;

    #[test]
    fn tar_holds_exactly_the_entries_with_normalised_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::create_dir(root.join("bin")).unwrap();
        fs::write(root.join("bin/run"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(root.join("bin/run"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(root.join("data"), "x").unwrap();
        fs::set_permissions(root.join("data"), fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("data", root.join("link")).unwrap();
        let selection =
            Selection::for_service(root, &root.join("Dockerfile"), Some("Dockerfile")).unwrap();
        let entries = walk(root, &selection, &DigestCache::default(), 2).unwrap();

        let mut bytes = Vec::new();
        write(root, &entries, None, &mut bytes).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let got: Vec<(String, u32, u64, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names, ["Dockerfile", "bin/", "bin/run", "data", "link"]);
        let modes: Vec<u32> = got.iter().map(|g| g.1).collect();
        assert_eq!(modes, [0o644, 0o755, 0o755, 0o644, 0o777]);
        assert!(got.iter().all(|g| g.2 == 0 && g.3 == 0 && g.4 == MTIME));

        // The same entries give the same bytes, and a changed file is refused.
        let mut again = Vec::new();
        write(root, &entries, None, &mut again).unwrap();
        assert_eq!(bytes, again);
        fs::write(root.join("data"), "y").unwrap();
        assert!(write(root, &entries, None, &mut Vec::new()).is_err());
    }

    #[test]
    fn outside_dockerfile_is_added_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "a").unwrap();
        let selection =
            Selection::for_service(dir.path(), Path::new("/nonexistent/Dockerfile"), None).unwrap();
        let entries = walk(dir.path(), &selection, &DigestCache::default(), 1).unwrap();
        let mut bytes = Vec::new();
        write(dir.path(), &entries, Some(b"FROM scratch\n"), &mut bytes).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut files = std::collections::BTreeMap::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            files.insert(e.path().unwrap().to_string_lossy().into_owned(), s);
        }
        let name = outside_dockerfile_name(b"FROM scratch\n");
        assert_eq!(files[&name], "FROM scratch\n");
        assert!(files[".dockerignore"].contains(&name));
        assert_eq!(files["a"], "a");
    }
}
