//! What each service needs before anything is built: present (in the
//! registry with `--push`, else in the local engine), to be built (and
//! why), or unknown because the check itself failed.

use std::collections::BTreeMap;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::project::Hashed;
use crate::registry::Registry;

#[derive(Debug)]
pub enum Need {
    Present {
        digest: Option<String>,
    },
    Build {
        reason: &'static str,
    },
    /// The check failed (after retries): reported for this service alone.
    Unknown {
        error: Error,
    },
}

/// Where presence is looked up.
pub enum Presence<'a> {
    Registry(&'a Registry),
    Engine(&'a Engine),
    /// `--force`: everything is built.
    Nowhere,
}

/// Checks every tag at once. A registry that refuses the credentials, or
/// whose TLS certificate (or ours) fails, concerns the whole run and is the
/// error.
pub async fn check(
    order: &[String],
    hashed: &BTreeMap<String, Hashed>,
    presence: Presence<'_>,
) -> Result<BTreeMap<String, Need>> {
    let checks = order.iter().map(|name| {
        let presence = &presence;
        async move {
            let image = hashed[name].image();
            let need = match presence {
                Presence::Nowhere => Need::Build { reason: "--force" },
                Presence::Registry(registry) => match registry.digest(&image).await {
                    Ok(Some(digest)) => Need::Present {
                        digest: Some(digest),
                    },
                    Ok(None) => Need::Build {
                        reason: "not in registry",
                    },
                    Err(e) if e.registry().is_some_and(|r| r.concerns_the_host()) => {
                        return Err(e);
                    }
                    Err(error) => Need::Unknown { error },
                },
                Presence::Engine(engine) => {
                    if engine.has_image(&image).await? {
                        Need::Present { digest: None }
                    } else {
                        Need::Build {
                            reason: "not in the local engine",
                        }
                    }
                }
            };
            Ok::<_, Error>((name.clone(), need))
        }
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .collect()
}
