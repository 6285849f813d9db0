//! The build context and the Dockerfile, served to BuildKit over the
//! session's FileSync service (`DiffCopy`): exactly the entries that were
//! hashed, never a directory walk of BuildKit's own.
//!
//! One DiffCopy call sends a stat per entry (in fsutil's walk order, parents
//! first), then the content of each file BuildKit asks for, in bounded
//! chunks that are hashed as they go; a file that no longer matches its
//! hash ends the call with an error packet, which fails the build.
//!
//! BuildKit keeps a copy of each local between builds and asks only for
//! files whose size, mode or time changed. Every file is therefore given a
//! time derived from its content (a fixed day plus 54 bits of its BLAKE3),
//! so an edit that keeps a file's size is still sent.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use tokio::sync::mpsc;

use super::proto::{PACKET_DATA, PACKET_ERR, PACKET_FIN, PACKET_REQ, PACKET_STAT, Packet, Stat};
use crate::context::{Digest, Entry, Kind};
use crate::engine::tarball::MTIME;
use crate::engine::verified::{VerifiedFile, to_error};
use crate::error::Error;

pub const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";

/// Go `os.FileMode` type bits.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;

/// Bytes of file data per message (BuildKit takes messages up to 4 MiB).
const CHUNK: usize = 256 * 1024;
/// Chunks read ahead of the network, at most.
const QUEUE: usize = 4;

#[derive(Debug, Clone)]
enum Source {
    Disk(PathBuf),
    Inline(Bytes),
}

#[derive(Debug, Clone)]
struct Item {
    path: String,
    kind: ItemKind,
}

#[derive(Debug, Clone)]
enum ItemKind {
    Dir,
    Symlink(String),
    File {
        source: Source,
        executable: bool,
        digest: Digest,
    },
}

/// The entries of one local (`context` or `dockerfile`), in fsutil order.
#[derive(Debug, Clone, Default)]
pub struct Local {
    items: Vec<Item>,
}

impl Local {
    /// A build context: `entries` (as hashed) below `root`.
    pub fn context(root: &std::path::Path, entries: &[Entry]) -> Local {
        let mut items: Vec<Item> = entries
            .iter()
            .map(|e| Item {
                path: e.path.clone(),
                kind: match e.kind {
                    Kind::Dir => ItemKind::Dir,
                    Kind::Symlink => ItemKind::Symlink(e.target.clone().unwrap_or_default()),
                    Kind::File => ItemKind::File {
                        source: Source::Disk(root.join(&e.path)),
                        executable: e.executable,
                        digest: e.digest.expect("files have digests"),
                    },
                },
            })
            .collect();
        items.sort_by(|a, b| compare_path(&a.path, &b.path));
        Local { items }
    }

    /// A local holding one file, `name`, with `bytes`.
    pub fn single(name: &str, bytes: Vec<u8>) -> Local {
        let digest = *blake3::hash(&bytes).as_bytes();
        Local {
            items: vec![Item {
                path: name.to_string(),
                kind: ItemKind::File {
                    source: Source::Inline(Bytes::from(bytes)),
                    executable: false,
                    digest,
                },
            }],
        }
    }
}

/// The locals a build's session serves, by name.
pub type Locals = HashMap<String, Local>;

/// fsutil's path order: byte-wise, except that `/` sorts before every other
/// byte, so a directory's entries follow it directly (`a`, `a/z`, `a.txt`).
pub fn compare_path(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |c: u8| if c == b'/' { 0u16 } else { c as u16 + 1 };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

/// A time that changes with the content: 2000-01-01 plus up to 2^24 s, and
/// nanoseconds, taken from the digest (54 bits in all).
fn content_time(digest: &Digest) -> i64 {
    let x = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    let seconds = MTIME as i64 + ((x >> 30) & ((1 << 24) - 1)) as i64;
    let nanos = ((x & ((1 << 30) - 1)) % 1_000_000_000) as i64;
    seconds * 1_000_000_000 + nanos
}

impl Item {
    fn stat(&self) -> std::io::Result<Stat> {
        let (mode, size, mod_time, linkname) = match &self.kind {
            ItemKind::Dir => (
                GO_DIR | 0o755,
                0,
                MTIME as i64 * 1_000_000_000,
                String::new(),
            ),
            ItemKind::Symlink(t) => {
                let digest = *blake3::hash(t.as_bytes()).as_bytes();
                (
                    GO_SYMLINK | 0o777,
                    t.len() as i64,
                    content_time(&digest),
                    t.clone(),
                )
            }
            ItemKind::File {
                source,
                executable,
                digest,
            } => {
                let size = match source {
                    Source::Disk(p) => std::fs::metadata(p)?.len() as i64,
                    Source::Inline(b) => b.len() as i64,
                };
                let mode = if *executable { 0o755 } else { 0o644 };
                (mode, size, content_time(digest), String::new())
            }
        };
        Ok(Stat {
            path: self.path.clone(),
            mode,
            uid: 0,
            gid: 0,
            size,
            mod_time,
            linkname,
        })
    }
}

/// What one DiffCopy call asks for (its gRPC metadata).
#[derive(Debug, Default)]
struct Request {
    dir: String,
    /// `followpaths` and `include-patterns`: only these (and their parents).
    include: Option<Vec<String>>,
}

/// The entries a call asks for, as fsutil's walker selects them: a pattern
/// that matches a path includes it (and everything below a directory); a
/// pattern longer than a path includes it as a parent; a followed path
/// through a symlink pulls in the link's target. Exclude patterns are not
/// applied: the entries are already exactly those Docker would send.
fn select<'a>(items: &'a [Item], request: &Request) -> Vec<&'a Item> {
    let Some(patterns) = &request.include else {
        return items.iter().collect();
    };
    let by_path: BTreeMap<&str, &Item> = items.iter().map(|i| (i.path.as_str(), i)).collect();
    let patterns = follow_links(&by_path, patterns);
    let mut out = Vec::new();
    let mut inside: Option<&str> = None;
    let mut skip: Option<&str> = None;
    for item in items {
        let below = |d: Option<&str>| {
            d.is_some_and(|d| {
                item.path.starts_with(d) && item.path.as_bytes().get(d.len()) == Some(&b'/')
            })
        };
        if below(skip) {
            continue;
        }
        skip = None;
        if below(inside) {
            out.push(item);
            continue;
        }
        inside = None;
        let is_dir = matches!(item.kind, ItemKind::Dir);
        let (mut matched, mut whole) = (false, false);
        for p in &patterns {
            let (ok, partial) = match_prefix(p, &item.path);
            if ok {
                matched = true;
                whole |= !partial;
            }
        }
        if !matched {
            if is_dir {
                skip = Some(&item.path);
            }
            continue;
        }
        // A partial match only makes a directory a parent of what matches.
        if !whole && !is_dir {
            continue;
        }
        if whole && is_dir {
            inside = Some(&item.path);
        }
        out.push(item);
    }
    out
}

/// fsutil's `matchPrefix`: a pattern with more components than `name` is
/// cut to as many and counts as a partial (parent directory) match.
fn match_prefix(pattern: &str, name: &str) -> (bool, bool) {
    let depth = name.matches('/').count();
    let parts: Vec<&str> = pattern.split('/').collect();
    if parts.len() > depth + 1 {
        (glob(&parts[..=depth].join("/"), name), true)
    } else {
        (glob(pattern, name), false)
    }
}

/// Go's `filepath.Match`: `*` and `?` stay within a segment; `[…]` classes;
/// `\` escapes.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(b'?') => n.first().is_some_and(|c| *c != b'/') && go(&p[1..], &n[1..]),
            Some(b'[') => {
                let Some((&c, rest)) = n.split_first() else {
                    return false;
                };
                let mut i = 1;
                let negated = matches!(p.get(1), Some(b'^' | b'!'));
                if negated {
                    i += 1;
                }
                let mut hit = false;
                let mut first = true;
                while i < p.len() && (first || p[i] != b']') {
                    first = false;
                    let mut lo = p[i];
                    if lo == b'\\' && i + 1 < p.len() {
                        i += 1;
                        lo = p[i];
                    }
                    let mut hi = lo;
                    if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|x| *x != b']') {
                        hi = p[i + 2];
                        i += 2;
                    }
                    hit |= lo <= c && c <= hi;
                    i += 1;
                }
                i < p.len() && c != b'/' && hit != negated && go(&p[i + 1..], rest)
            }
            Some(b'\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The patterns, plus the targets of symlinks they go through.
fn follow_links(items: &BTreeMap<&str, &Item>, patterns: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo: Vec<(String, u32)> = patterns
        .iter()
        .map(|p| (crate::paths::clean(p), 0))
        .collect();
    while let Some((p, depth)) = todo.pop() {
        if out.contains(&p) {
            continue;
        }
        out.push(p.clone());
        if depth > 40 || p.contains(['*', '?', '[']) {
            continue;
        }
        let parts: Vec<&str> = p.split('/').collect();
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            if let Some(Item {
                kind: ItemKind::Symlink(target),
                ..
            }) = items.get(prefix.as_str()).copied()
            {
                let base = if target.starts_with('/') {
                    String::new()
                } else {
                    parts[..i - 1].join("/")
                };
                let mut resolved = format!("{base}/{target}");
                for rest in &parts[i..] {
                    resolved = format!("{resolved}/{rest}");
                }
                let resolved = crate::paths::clean(resolved.trim_start_matches('/'));
                if !resolved.starts_with("..") {
                    todo.push((resolved, depth + 1));
                }
                break;
            }
        }
    }
    out
}

/// Serves one DiffCopy call on its h2 stream.
pub async fn serve(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    locals: Arc<Locals>,
) {
    let headers = request.headers();
    let all = |k: &str| -> Vec<String> {
        headers
            .get_all(k)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let mut include: Vec<String> = all("followpaths");
    include.extend(all("include-patterns"));
    let asked = Request {
        dir: all("dir-name").into_iter().next().unwrap_or_default(),
        include: (!include.is_empty()).then_some(include),
    };
    let head = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc");
    let Some(local) = locals.get(&asked.dir) else {
        let response = head
            .header("grpc-status", "5")
            .header("grpc-message", format!("no local named {}", asked.dir))
            .body(())
            .expect("a valid response");
        let _ = respond.send_response(response, true);
        return;
    };
    let Ok(mut stream) = respond.send_response(head.body(()).expect("a valid response"), false)
    else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_packets(request.into_body(), tx));
    let selected = select(&local.items, &asked);
    match send(&mut stream, &mut rx, &selected).await {
        Ok(Ok(())) => {}
        // The builder shows an error packet's text as the build's error.
        Ok(Err(e)) => {
            let packet = Packet {
                r#type: PACKET_ERR,
                data: e.to_string().into_bytes(),
                ..Packet::default()
            };
            let _ = send_flow(&mut stream, grpc_frame(&packet.encode_to_vec())).await;
        }
        // The stream broke (the build was cancelled): nothing more to say.
        Err(_) => {
            reader.abort();
            return;
        }
    }
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = stream.send_trailers(trailers);
    reader.abort();
}

enum Incoming {
    Request(u32),
    Finished,
    /// The receiver failed or went away.
    Closed,
}

/// The receiver's packets: requests for files, then FIN.
async fn read_packets(mut body: h2::RecvStream, tx: mpsc::UnboundedSender<Incoming>) {
    let mut buf = BytesMut::new();
    loop {
        while buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() < 5 + len {
                break;
            }
            let message = buf.split_to(5 + len).split_off(5);
            let event = match Packet::decode(message.freeze()) {
                Ok(p) if p.r#type == PACKET_REQ => Incoming::Request(p.id),
                Ok(p) if p.r#type == PACKET_FIN => Incoming::Finished,
                Ok(p) if p.r#type == PACKET_ERR => Incoming::Closed,
                Ok(_) => continue,
                Err(_) => Incoming::Closed,
            };
            if tx.send(event).is_err() {
                return;
            }
        }
        match body.data().await {
            Some(Ok(chunk)) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                buf.extend_from_slice(&chunk);
            }
            Some(Err(_)) | None => {
                let _ = tx.send(Incoming::Closed);
                return;
            }
        }
    }
}

/// Stats, then each requested file, until the receiver's FIN. The outer
/// error is a broken stream; the inner one, a file that is not what was hashed.
async fn send(
    stream: &mut h2::SendStream<Bytes>,
    rx: &mut mpsc::UnboundedReceiver<Incoming>,
    items: &[&Item],
) -> Result<Result<(), Error>, h2::Error> {
    let mut files: HashMap<u32, (&Item, i64)> = HashMap::new();
    for (id, item) in items.iter().enumerate() {
        let stat = match item.stat() {
            Ok(s) => s,
            Err(e) => return Ok(Err(source_error(item, e))),
        };
        if matches!(item.kind, ItemKind::File { .. }) {
            files.insert(id as u32, (item, stat.size));
        }
        let packet = Packet {
            r#type: PACKET_STAT,
            stat: Some(stat),
            ..Packet::default()
        };
        send_flow(stream, grpc_frame(&packet.encode_to_vec())).await?;
    }
    // An empty stat ends the list.
    send_flow(stream, grpc_frame(&[])).await?;
    loop {
        match rx.recv().await {
            Some(Incoming::Request(id)) => {
                let Some((item, size)) = files.remove(&id) else {
                    return Ok(Err(Error::internal(format!(
                        "the builder asked for an unknown file ({id})"
                    ))));
                };
                if let Err(e) = send_file(stream, id, item, size).await? {
                    return Ok(Err(e));
                }
            }
            Some(Incoming::Finished) => {
                let fin = Packet {
                    r#type: PACKET_FIN,
                    ..Packet::default()
                };
                send_flow(stream, grpc_frame(&fin.encode_to_vec())).await?;
                return Ok(Ok(()));
            }
            Some(Incoming::Closed) | None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        }
    }
}

fn source_error(item: &Item, e: std::io::Error) -> Error {
    match &item.kind {
        ItemKind::File {
            source: Source::Disk(p),
            ..
        } => to_error(e, |e| Error::io(p, e)),
        _ => Error::internal(format!("{}: {e}", item.path)),
    }
}

/// Streams one file, verified: its size as announced, its bytes as hashed.
async fn send_file(
    stream: &mut h2::SendStream<Bytes>,
    id: u32,
    item: &Item,
    size: i64,
) -> Result<Result<(), Error>, h2::Error> {
    let ItemKind::File { source, digest, .. } = &item.kind else {
        unreachable!("only files are requested")
    };
    let (tx, mut chunks) = mpsc::channel::<Result<Bytes, Error>>(QUEUE);
    let (source, digest) = (source.clone(), *digest);
    let reader = tokio::task::spawn_blocking(move || {
        let result = match source {
            Source::Inline(bytes) => {
                for c in bytes.chunks(CHUNK) {
                    if tx.blocking_send(Ok(bytes.slice_ref(c))).is_err() {
                        return;
                    }
                }
                Ok(())
            }
            Source::Disk(path) => read_verified(&path, &digest, size as u64, &tx),
        };
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    while let Some(chunk) = chunks.recv().await {
        match chunk {
            Ok(c) => {
                send_flow(stream, data_head(id, c.len())).await?;
                send_flow(stream, c).await?;
            }
            Err(e) => {
                reader.abort();
                return Ok(Err(e));
            }
        }
    }
    // An empty DATA ends the file.
    send_flow(stream, data_head(id, 0)).await?;
    Ok(Ok(()))
}

/// Reads `path` in chunks into `tx`, checking it against its hash; the
/// error names the file and what changed.
fn read_verified(
    path: &std::path::Path,
    digest: &Digest,
    announced: u64,
    tx: &mpsc::Sender<Result<Bytes, Error>>,
) -> Result<(), Error> {
    let mut file = VerifiedFile::open(path, digest)?;
    if file.size() != announced {
        return Err(Error::file(
            path,
            "changed after it was hashed (its size moved); nothing was built from it: run again on a tree that is not being modified",
        ));
    }
    loop {
        let mut buf = BytesMut::zeroed(CHUNK);
        let mut got = 0;
        while got < CHUNK {
            match file.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(to_error(e, |e| Error::io(path, e))),
            }
        }
        if got == 0 {
            return Ok(());
        }
        buf.truncate(got);
        if tx.blocking_send(Ok(buf.freeze())).is_err() {
            return Ok(());
        }
    }
}

fn grpc_frame(message: &[u8]) -> Bytes {
    super::session::frame(message)
}

fn put_varint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

/// A gRPC prefix and the start of `Packet{DATA, id, data: <len bytes>}`, so
/// that a chunk goes out as it is, without a copy into a message.
fn data_head(id: u32, len: usize) -> Bytes {
    let mut packet = BytesMut::with_capacity(16);
    packet.put_u8(0x08);
    put_varint(&mut packet, PACKET_DATA as u64);
    if id != 0 {
        packet.put_u8(0x18);
        put_varint(&mut packet, u64::from(id));
    }
    if len > 0 {
        packet.put_u8(0x22);
        put_varint(&mut packet, len as u64);
    }
    let mut b = BytesMut::with_capacity(5 + packet.len());
    b.put_u8(0);
    b.put_u32((packet.len() + len) as u32);
    b.put_slice(&packet);
    b.freeze()
}

/// Sends within HTTP/2 flow control: h2 would otherwise buffer all of it.
async fn send_flow(stream: &mut h2::SendStream<Bytes>, mut data: Bytes) -> Result<(), h2::Error> {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(0)) => continue,
            Some(Ok(n)) => {
                let n = n.min(data.len());
                stream.send_data(data.split_to(n), false)?;
            }
            Some(Err(e)) => return Err(e),
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(paths: &[(&str, bool)]) -> Local {
        let mut items: Vec<Item> = paths
            .iter()
            .map(|(p, dir)| Item {
                path: p.to_string(),
                kind: if *dir {
                    ItemKind::Dir
                } else {
                    ItemKind::File {
                        source: Source::Inline(Bytes::new()),
                        executable: false,
                        digest: [0; 32],
                    }
                },
            })
            .collect();
        items.sort_by(|a, b| compare_path(&a.path, &b.path));
        Local { items }
    }

    fn chosen(l: &Local, include: &[&str]) -> Vec<String> {
        let r = Request {
            dir: "context".into(),
            include: Some(include.iter().map(|s| s.to_string()).collect()),
        };
        select(&l.items, &r)
            .iter()
            .map(|i| i.path.clone())
            .collect()
    }

    #[test]
    fn walk_order_puts_a_directory_before_its_siblings() {
        let mut v = vec!["a.txt", "a/b", "a", "a-b", "a0"];
        v.sort_by(|a, b| compare_path(a, b));
        assert_eq!(v, ["a", "a/b", "a-b", "a.txt", "a0"]);
    }

    #[test]
    fn follow_paths_select_like_fsutil() {
        let l = local(&[
            (".dockerignore", false),
            ("a", true),
            ("a/b", false),
            ("a/c", true),
            ("a/c/d", false),
            ("z", false),
        ]);
        assert_eq!(chosen(&l, &[".dockerignore"]), [".dockerignore"]);
        assert_eq!(chosen(&l, &["a/b"]), ["a", "a/b"]);
        assert_eq!(chosen(&l, &["a"]), ["a", "a/b", "a/c", "a/c/d"]);
        assert_eq!(chosen(&l, &["a/*/d"]), ["a", "a/c", "a/c/d"]);
        assert_eq!(chosen(&l, &["*"]).len(), 6);
        assert!(chosen(&l, &["nothing"]).is_empty());
    }

    #[test]
    fn followed_symlinks_bring_their_targets() {
        let mut l = local(&[("real", true), ("real/f", false)]);
        l.items.push(Item {
            path: "link".into(),
            kind: ItemKind::Symlink("real".into()),
        });
        l.items.sort_by(|a, b| compare_path(&a.path, &b.path));
        assert_eq!(chosen(&l, &["link"]), ["link", "real", "real/f"]);
    }

    #[test]
    fn content_times_differ_with_content_and_stay_near_2000() {
        let a = content_time(blake3::hash(b"one").as_bytes());
        let b = content_time(blake3::hash(b"two").as_bytes());
        assert_ne!(a, b);
        for t in [a, b] {
            let secs = t / 1_000_000_000;
            assert!(secs >= MTIME as i64 && secs < MTIME as i64 + (1 << 24));
        }
        assert_eq!(a, content_time(blake3::hash(b"one").as_bytes()));
    }

    #[test]
    fn globs_stay_within_a_segment() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "d/a.txt"));
        assert!(glob("a[0-9]", "a5"));
        assert!(glob("src/*", "src/x"));
        assert!(!glob("src/*", "src/x/y"));
    }
}
