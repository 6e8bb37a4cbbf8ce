//! Which canister id a name has on a network: from `--canister NAME=ID`,
//! or from the state files the deployment tools keep in the project.
//!
//! * icp-cli records the ids of each environment in
//!   `.icp/cache/mappings/<environment>.ids.json` (environments on a
//!   managed network, such as `local`) or `.icp/data/mappings/<environment>.ids.json`
//!   (connected networks, such as `ic`), as `{ "<canister>": "<id>" }`.
//! * dfx records them in `.dfx/<network>/canister_ids.json`, and for `ic`
//!   (and other persistent networks) in `canister_ids.json` at the project
//!   root, as `{ "<canister>": { "<network>": "<id>" } }`.
//!
//! [`Lookup::resolve`] tries the flag, then each file, and when none has
//! the name it says which files it read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candid::Principal;

/// Why no id was found.
#[derive(Debug, thiserror::Error)]
pub enum CanisterIdError {
    #[error(
        "no id for canister `{name}`; tried --canister {name}=<id>, {tried}. Deploy it (`icp \
         deploy {name}` or `dfx deploy {name}`), name the environment or network it was deployed \
         to (--environment), or pass --canister {name}=<id>",
        tried = if .tried.is_empty() { "no state files".to_string() } else { .tried.join(", ") }
    )]
    NotFound { name: String, tried: Vec<String> },
    #[error("{path}: {reason}")]
    BadFile { path: String, reason: String },
    #[error(
        "--canister {0}: expected NAME=ID with ID a principal such as bkyz2-fmaaa-aaaaa-qaaaq-cai"
    )]
    BadFlag(String),
}

/// `NAME=ID` from `--canister`.
pub fn parse_flag(flag: &str) -> Result<(String, Principal), CanisterIdError> {
    let (name, id) = flag
        .split_once('=')
        .ok_or_else(|| CanisterIdError::BadFlag(flag.to_string()))?;
    let id =
        Principal::from_text(id.trim()).map_err(|_| CanisterIdError::BadFlag(flag.to_string()))?;
    if name.trim().is_empty() {
        return Err(CanisterIdError::BadFlag(flag.to_string()));
    }
    Ok((name.trim().to_string(), id))
}

/// Where to look for canister ids.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// Ids given on the command line, by name.
    pub explicit: BTreeMap<String, Principal>,
    /// The project root (the directory with `icp.yaml` or `dfx.json`).
    pub project: Option<PathBuf>,
    /// icp-cli environments and dfx networks to read, in order.
    pub environments: Vec<String>,
}

/// The nearest directory from `start` upwards holding `icp.yaml` or
/// `dfx.json`.
pub fn find_project_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("icp.yaml").is_file() || d.join("dfx.json").is_file())
        .map(Path::to_path_buf)
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, CanisterIdError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CanisterIdError::BadFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| CanisterIdError::BadFile {
            path: path.display().to_string(),
            reason: format!("not JSON: {e}"),
        })
}

fn principal_at(
    path: &Path,
    value: Option<&serde_json::Value>,
) -> Result<Option<Principal>, CanisterIdError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.as_str().ok_or_else(|| CanisterIdError::BadFile {
        path: path.display().to_string(),
        reason: format!("expected a principal as text, found {value}"),
    })?;
    Principal::from_text(text)
        .map(Some)
        .map_err(|e| CanisterIdError::BadFile {
            path: path.display().to_string(),
            reason: format!("{text:?} is not a principal: {e}"),
        })
}

impl Lookup {
    /// The id of canister `name`.
    pub fn resolve(&self, name: &str) -> Result<Principal, CanisterIdError> {
        if let Some(id) = self.explicit.get(name) {
            return Ok(*id);
        }
        let mut tried = Vec::new();
        if let Some(root) = &self.project {
            for env in &self.environments {
                // icp-cli: `{ name: id }` per environment.
                for store in ["cache", "data"] {
                    let path = root
                        .join(".icp")
                        .join(store)
                        .join("mappings")
                        .join(format!("{env}.ids.json"));
                    let json = read_json(&path)?;
                    if let Some(id) = principal_at(&path, json.as_ref().and_then(|j| j.get(name)))?
                    {
                        return Ok(id);
                    }
                    tried.push(path.display().to_string());
                }
                // dfx: `{ name: { network: id } }`.
                let per_network = root.join(".dfx").join(env).join("canister_ids.json");
                let persistent = root.join("canister_ids.json");
                for path in [per_network, persistent] {
                    let json = read_json(&path)?;
                    let value = json
                        .as_ref()
                        .and_then(|j| j.get(name))
                        .and_then(|c| c.get(env));
                    if let Some(id) = principal_at(&path, value)? {
                        return Ok(id);
                    }
                    tried.push(format!("{} [{name}][{env}]", path.display()));
                }
            }
        }
        Err(CanisterIdError::NotFound {
            name: name.to_string(),
            tried,
        })
    }
}
