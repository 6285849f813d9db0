use super::*;

fn file(path: &str, content: &[u8], executable: bool) -> Entry {
    Entry {
        path: path.into(),
        kind: Kind::File,
        executable,
        digest: Some(*blake3::hash(content).as_bytes()),
        target: None,
    }
}

fn base_entries() -> Vec<Entry> {
    vec![
        file("Dockerfile", b"FROM scratch\n", false),
        Entry {
            path: "bin".into(),
            kind: Kind::Dir,
            executable: false,
            digest: None,
            target: None,
        },
        file("bin/run.sh", b"#!/bin/sh\n", true),
    ]
}

fn tag_of(
    f: impl FnOnce(
        &mut Vec<Entry>,
        &mut BTreeMap<String, String>,
        &mut Vec<Dep>,
    ) -> (Option<&'static str>, Option<&'static str>),
) -> String {
    let mut entries = base_entries();
    let mut args = BTreeMap::from([("A".to_string(), "1".to_string())]);
    let mut deps = vec![Dep {
        name: "base".into(),
        repository: "r/base".into(),
        tag: "aaaa".into(),
    }];
    let (target, platform) = f(&mut entries, &mut args, &mut deps);
    let inputs = Inputs {
        dockerfile_path: "Dockerfile",
        dockerfile: b"FROM scratch\n",
        target,
        platform,
        args: &args,
        deps: &deps,
        entries: &entries,
        bases: &[],
    };
    tag(&digest(&inputs), 64)
}

/// The encoding of a fixed input, spelled out byte by byte as docs/hashing.md
/// describes it, must give the same digest as the encoder.
#[test]
fn encoding_matches_the_spec() {
    let mut m: Vec<u8> = Vec::new();
    let frame = |m: &mut Vec<u8>, b: &[u8]| {
        m.extend((b.len() as u64).to_le_bytes());
        m.extend(b);
    };
    frame(&mut m, b"tagsmith/v1");
    frame(&mut m, b"Dockerfile");
    frame(&mut m, b"FROM scratch\n");
    m.push(1);
    frame(&mut m, b"runtime");
    m.push(0);
    m.extend(1u64.to_le_bytes());
    frame(&mut m, b"A");
    frame(&mut m, b"1");
    m.extend(1u64.to_le_bytes());
    frame(&mut m, b"base");
    frame(&mut m, b"r/base");
    frame(&mut m, b"aaaa");
    m.extend(3u64.to_le_bytes());
    frame(&mut m, b"Dockerfile");
    m.extend([1, 0]);
    m.extend(blake3::hash(b"FROM scratch\n").as_bytes());
    frame(&mut m, b"bin");
    m.extend([2, 0]);
    frame(&mut m, b"bin/run.sh");
    m.extend([1, 1]);
    m.extend(blake3::hash(b"#!/bin/sh\n").as_bytes());
    let expected = blake3::hash(&m).to_hex().to_string();
    assert_eq!(tag_of(|_, _, _| (Some("runtime"), None)), expected);
}

#[test]
fn every_input_changes_the_tag() {
    let base = tag_of(|_, _, _| (None, None));
    let variants = [
        tag_of(|e, _, _| {
            e[2] = file("bin/run.sh", b"#!/bin/bash\n", true);
            (None, None)
        }),
        tag_of(|e, _, _| {
            e[2].executable = false;
            (None, None)
        }),
        tag_of(|e, _, _| {
            e[2].path = "bin/run2.sh".into();
            (None, None)
        }),
        tag_of(|e, _, _| {
            e.remove(1);
            (None, None)
        }),
        tag_of(|_, a, _| {
            a.insert("A".into(), "2".into());
            (None, None)
        }),
        tag_of(|_, a, _| {
            a.insert("B".into(), "".into());
            (None, None)
        }),
        tag_of(|_, _, d| {
            d[0].tag = "bbbb".into();
            (None, None)
        }),
        tag_of(|_, _, d| {
            d.clear();
            (None, None)
        }),
        tag_of(|_, _, _| (Some("runtime"), None)),
        tag_of(|_, _, _| (None, Some("linux/arm64"))),
        tag_of(|_, _, _| (Some(""), None)),
    ];
    for (i, v) in variants.iter().enumerate() {
        assert_ne!(*v, base, "variant {i} did not change the tag");
    }
    let mut all = variants.to_vec();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        variants.len(),
        "two different inputs gave one tag"
    );
}

#[test]
fn framing_prevents_ambiguity() {
    // "A"="1B" vs "A1"="B": same concatenation, different tags.
    let one = tag_of(|_, a, _| {
        a.clear();
        a.insert("A".into(), "1B".into());
        (None, None)
    });
    let two = tag_of(|_, a, _| {
        a.clear();
        a.insert("A1".into(), "B".into());
        (None, None)
    });
    assert_ne!(one, two);
}

#[test]
fn tag_is_a_lowercase_hex_prefix() {
    let d = blake3::hash(b"x");
    assert_eq!(tag(&d, 12).len(), 12);
    assert!(d.to_hex().starts_with(&tag(&d, 32)));
    assert!(
        tag(&d, 32)
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
}

#[test]
fn locked_bases_are_encoded_after_the_entries() {
    let entries = base_entries();
    let args = BTreeMap::new();
    let with = |bases: &[(&str, &str)]| {
        digest(&Inputs {
            dockerfile_path: "Dockerfile",
            dockerfile: b"FROM python:3\n",
            target: None,
            platform: None,
            args: &args,
            deps: &[],
            entries: &entries[..1],
            bases,
        })
    };
    let mut m: Vec<u8> = Vec::new();
    let frame = |m: &mut Vec<u8>, b: &[u8]| {
        m.extend((b.len() as u64).to_le_bytes());
        m.extend(b);
    };
    frame(&mut m, b"tagsmith/v1");
    frame(&mut m, b"Dockerfile");
    frame(&mut m, b"FROM python:3\n");
    m.extend([0, 0]);
    m.extend(0u64.to_le_bytes());
    m.extend(0u64.to_le_bytes());
    m.extend(1u64.to_le_bytes());
    frame(&mut m, b"Dockerfile");
    m.extend([1, 0]);
    m.extend(blake3::hash(b"FROM scratch\n").as_bytes());
    let unlocked = blake3::hash(&m);
    assert_eq!(with(&[]), unlocked, "no lock: the encoding of before");
    m.extend(1u64.to_le_bytes());
    frame(&mut m, b"docker.io/library/python:3");
    frame(&mut m, b"sha256:aa");
    assert_eq!(
        with(&[("docker.io/library/python:3", "sha256:aa")]),
        blake3::hash(&m)
    );
    assert_ne!(
        with(&[("docker.io/library/python:3", "sha256:aa")]),
        with(&[("docker.io/library/python:3", "sha256:bb")])
    );
}
