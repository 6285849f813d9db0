//! Real tools the pipeline tests drive (kubectl, make, shells, man), and
//! the cleanup of images a test built.

use std::process::Command;

/// Whether `program` runs (`args` is a cheap invocation such as
/// `--version`). Under `CI=true` a missing one fails the test when
/// `required`; otherwise the test says loudly that it is skipped.
pub fn have(test: &str, program: &str, args: &[&str], required: bool) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    let what = format!("{test}: needs {program}");
    if required && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}");
    }
    eprintln!("SKIPPED {what}");
    false
}

/// Removes the images a test built, and their registry cache tags, when
/// it ends (other images are left alone: the engine is shared). Images a
/// later build moved a tag away from are recorded with [`Built::snapshot`]
/// and removed if nothing tags them any more.
pub struct Built(pub Vec<String>, pub Vec<String>);

impl Built {
    pub fn new(images: Vec<String>) -> Built {
        Built(images, Vec::new())
    }

    /// Records the image IDs the references point at now.
    pub fn snapshot(&mut self) {
        for image in &self.0 {
            let o = Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", image])
                .output();
            if let Ok(o) = o
                && o.status.success()
            {
                self.1
                    .push(String::from_utf8_lossy(&o.stdout).trim().to_string());
            }
        }
    }
}

impl Drop for Built {
    fn drop(&mut self) {
        let mut refs = Vec::new();
        for image in &self.0 {
            refs.push(image.clone());
            if let Some((repo, _)) = image.rsplit_once(':') {
                refs.push(format!("{repo}:buildcache"));
            }
        }
        super::infra::remove_images(&refs.iter().map(String::as_str).collect::<Vec<_>>());
        for id in &self.1 {
            let untagged = Command::new("docker")
                .args(["image", "inspect", "--format", "{{len .RepoTags}}", id])
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"0"));
            if untagged {
                let _ = Command::new("docker")
                    .args(["rmi", "--no-prune", id])
                    .output();
            }
        }
    }
}

/// Every service's image reference, from `tags --format json`.
pub fn images(dir: &std::path::Path) -> Vec<String> {
    super::by_name(&super::ok(dir, &["tags", "--format", "json"]), "image")
        .into_values()
        .collect()
}
