//! `explain`: every input of a tag, as text or JSON, and the difference
//! between two such JSON records — the answer to "why did this rebuild?".

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::config::Service;
use crate::project::Hashed;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Explain {
    pub version: u32,
    pub service: String,
    pub tag: String,
    #[serde(default)]
    pub image: Option<String>,
    pub inputs: Vec<Input>,
    pub dockerfile: Dockerfile,
    #[serde(default)]
    pub ignore_file: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub depends_on: Vec<DepTag>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Input {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub executable: bool,
    pub blake3: Option<String>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dockerfile {
    pub path: String,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DepTag {
    pub name: String,
    pub tag: String,
}

impl Explain {
    pub fn new(service: &Service, hashed: &Hashed) -> Explain {
        Explain {
            version: 1,
            service: hashed.name.clone(),
            tag: hashed.tag.clone(),
            image: Some(hashed.image()),
            inputs: hashed
                .entries
                .iter()
                .map(|e| Input {
                    path: e.path.clone(),
                    kind: e.kind.as_str().to_string(),
                    executable: e.executable,
                    blake3: e
                        .digest
                        .map(|d| blake3::Hash::from_bytes(d).to_hex().to_string()),
                    target: e.target.clone(),
                })
                .collect(),
            dockerfile: Dockerfile {
                path: hashed.dockerfile_path.clone(),
                blake3: hashed.dockerfile_digest.to_hex().to_string(),
            },
            ignore_file: hashed.ignore_file.clone(),
            args: service.args.clone(),
            target: service.target.clone(),
            platform: service.platform.clone(),
            depends_on: hashed
                .deps
                .iter()
                .map(|d| DepTag {
                    name: d.name.clone(),
                    tag: d.tag.clone(),
                })
                .collect(),
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let none = || "-".to_string();
        let _ = writeln!(s, "service     {}", self.service);
        let _ = writeln!(s, "tag         {}", self.tag);
        if let Some(image) = &self.image {
            let _ = writeln!(s, "image       {image}");
        }
        let _ = writeln!(
            s,
            "dockerfile  {} (blake3 {})",
            self.dockerfile.path,
            short(&self.dockerfile.blake3)
        );
        let _ = writeln!(
            s,
            "ignore file {}",
            self.ignore_file.clone().unwrap_or_else(none)
        );
        let _ = writeln!(
            s,
            "target      {}",
            self.target.clone().unwrap_or_else(none)
        );
        let _ = writeln!(
            s,
            "platform    {}",
            self.platform.clone().unwrap_or_else(none)
        );
        let _ = writeln!(s, "{}", header("args", self.args.is_empty()));
        for (k, v) in &self.args {
            let _ = writeln!(s, "  {k}={v}");
        }
        let _ = writeln!(s, "{}", header("depends on", self.depends_on.is_empty()));
        for d in &self.depends_on {
            let _ = writeln!(s, "  {} {}", d.name, d.tag);
        }
        let _ = writeln!(s, "inputs      {} entries", self.inputs.len());
        for i in &self.inputs {
            let mode = if i.executable { "x" } else { "-" };
            let what = match (&i.blake3, &i.target) {
                (_, Some(t)) => format!("-> {t}"),
                (Some(h), None) => short(h).to_string(),
                (None, None) => String::new(),
            };
            let _ = writeln!(s, "  {:<7} {mode} {:<16} {}", i.kind, what, i.path);
        }
        s
    }
}

/// A section title, with `-` when the section is empty.
fn header(title: &str, empty: bool) -> String {
    if empty {
        format!("{title:<11} -")
    } else {
        title.to_string()
    }
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(16)]
}

/// What differs between `old` and `new`, one line per difference.
pub fn diff(old: &Explain, new: &Explain) -> Vec<String> {
    let mut out = Vec::new();
    if old.service != new.service {
        out.push(format!(
            "service: {} -> {} (comparing different services)",
            old.service, new.service
        ));
    }
    if old.dockerfile.path != new.dockerfile.path {
        out.push(format!(
            "dockerfile: moved {} -> {}",
            old.dockerfile.path, new.dockerfile.path
        ));
    }
    if old.dockerfile.blake3 != new.dockerfile.blake3 {
        out.push(format!(
            "dockerfile: content of {} changed",
            new.dockerfile.path
        ));
    }
    for (what, a, b) in [
        ("target", &old.target, &new.target),
        ("platform", &old.platform, &new.platform),
    ] {
        if a != b {
            out.push(format!(
                "{what}: {} -> {}",
                show(a.as_deref()),
                show(b.as_deref())
            ));
        }
    }
    let args_old: BTreeMap<&str, &str> = old
        .args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let args_new: BTreeMap<&str, &str> = new
        .args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    changes(&args_old, &args_new, |k, a, b| {
        out.push(format!("arg {k}: {} -> {}", show(a), show(b)))
    });
    let deps_old: BTreeMap<&str, &str> = old
        .depends_on
        .iter()
        .map(|d| (d.name.as_str(), d.tag.as_str()))
        .collect();
    let deps_new: BTreeMap<&str, &str> = new
        .depends_on
        .iter()
        .map(|d| (d.name.as_str(), d.tag.as_str()))
        .collect();
    changes(&deps_old, &deps_new, |k, a, b| {
        out.push(format!("dependency {k}: tag {} -> {}", show(a), show(b)))
    });
    let in_old: BTreeMap<&str, &Input> = old.inputs.iter().map(|i| (i.path.as_str(), i)).collect();
    let in_new: BTreeMap<&str, &Input> = new.inputs.iter().map(|i| (i.path.as_str(), i)).collect();
    changes(&in_old, &in_new, |path, a, b| {
        out.push(match (a, b) {
            (None, Some(b)) => format!("added    {path} ({})", b.kind),
            (Some(a), None) => format!("removed  {path} ({})", a.kind),
            (Some(a), Some(b)) => format!("changed  {path} ({})", input_change(a, b)),
            (None, None) => unreachable!(),
        })
    });
    out
}

fn input_change(a: &Input, b: &Input) -> String {
    let mut what = Vec::new();
    if a.kind != b.kind {
        what.push(format!("{} -> {}", a.kind, b.kind));
    } else if a.target != b.target {
        what.push(format!(
            "link target {} -> {}",
            show(a.target.as_deref()),
            show(b.target.as_deref())
        ));
    } else if a.blake3 != b.blake3 {
        what.push("content".to_string());
    }
    if a.executable != b.executable {
        what.push(
            if b.executable {
                "became executable"
            } else {
                "no longer executable"
            }
            .to_string(),
        );
    }
    what.join(", ")
}

/// Calls `f(key, old, new)` for every key whose value differs.
fn changes<'a, V: PartialEq + Copy>(
    old: &BTreeMap<&'a str, V>,
    new: &BTreeMap<&'a str, V>,
    mut f: impl FnMut(&str, Option<V>, Option<V>),
) {
    let keys: std::collections::BTreeSet<&&str> = old.keys().chain(new.keys()).collect();
    for k in keys {
        let (a, b) = (old.get(*k).copied(), new.get(*k).copied());
        if a != b {
            f(k, a, b);
        }
    }
}

fn show(v: Option<&str>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => format!("\"{v}\""),
    }
}
