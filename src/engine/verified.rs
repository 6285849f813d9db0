//! A context file read for sending, in bounded chunks, and checked against
//! what was hashed as it goes: its size when opened is what the archive
//! header promises, and by the end its bytes must have the hashed digest.
//! A file that grows, shrinks or changes meanwhile is an error the moment
//! it shows, so a builder never receives a short, padded or different file.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::context::Digest;
use crate::error::{Error, Result};

pub struct VerifiedFile {
    file: File,
    path: PathBuf,
    size: u64,
    read: u64,
    hasher: blake3::Hasher,
    expected: Digest,
    done: bool,
}

/// Why a file no longer matches its hash; carried inside an `io::Error`.
#[derive(Debug)]
pub struct Changed {
    pub path: PathBuf,
    pub what: &'static str,
}

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for Changed {}

impl VerifiedFile {
    pub fn open(path: &Path, expected: &Digest) -> Result<VerifiedFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(VerifiedFile {
            file,
            path: path.to_path_buf(),
            size,
            read: 0,
            hasher: blake3::Hasher::new(),
            expected: *expected,
            done: false,
        })
    }

    /// The size when opened: what an archive header may promise.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn changed(&self, what: &'static str) -> io::Error {
        io::Error::other(Changed {
            path: self.path.clone(),
            what,
        })
    }
}

impl Read for VerifiedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.size - self.read;
        if remaining == 0 {
            let mut probe = [0u8; 1];
            if self.file.read(&mut probe)? != 0 {
                return Err(self.changed("grew while it was being sent"));
            }
            if *self.hasher.finalize().as_bytes() != self.expected {
                return Err(self.changed("changed after it was hashed"));
            }
            self.done = true;
            return Ok(0);
        }
        let want = buf.len().min(remaining.min(usize::MAX as u64) as usize);
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(self.changed("shrank while it was being sent"));
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// The user's error for an `io::Error` from reading a [`VerifiedFile`]
/// (or `other` when it is not one).
pub fn to_error(e: io::Error, other: impl FnOnce(io::Error) -> Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Changed>())
    {
        Some(c) => Error::file(
            &c.path,
            format!(
                "{}; nothing was built from it: run again on a tree that is not being modified",
                c.what
            ),
        ),
        None => other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> Digest {
        *blake3::hash(bytes).as_bytes()
    }

    fn read_all(f: &mut VerifiedFile) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn matching_files_read_whole_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello world").unwrap();
        let mut f = VerifiedFile::open(&p, &digest(b"hello world")).unwrap();
        assert_eq!(f.size(), 11);
        assert_eq!(read_all(&mut f).unwrap(), b"hello world");
        std::fs::write(&p, b"").unwrap();
        let mut f = VerifiedFile::open(&p, &digest(b"")).unwrap();
        assert_eq!(read_all(&mut f).unwrap(), b"");
    }

    #[test]
    fn changed_grown_and_shrunk_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let what = |f: &mut VerifiedFile| {
            let e = read_all(f).unwrap_err();
            to_error(e, |_| Error::internal("not a change")).to_string()
        };
        std::fs::write(&p, b"hello world").unwrap();
        let mut f = VerifiedFile::open(&p, &digest(b"hello there")).unwrap();
        assert!(what(&mut f).ends_with("changed after it was hashed; nothing was built from it: run again on a tree that is not being modified"));

        let mut f = VerifiedFile::open(&p, &digest(b"hello world")).unwrap();
        std::fs::write(&p, b"hello world, and more").unwrap();
        assert!(what(&mut f).contains("grew while it was being sent"));

        std::fs::write(&p, b"hello world").unwrap();
        let mut f = VerifiedFile::open(&p, &digest(b"hello world")).unwrap();
        std::fs::write(&p, b"hello").unwrap();
        assert!(what(&mut f).contains("shrank while it was being sent"));
    }
}
