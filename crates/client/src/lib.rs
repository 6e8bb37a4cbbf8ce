//! The suite on any IC network: a [`suite::Transport`] over `ic-agent`
//! ([`AgentTransport`]), the networks the command line names
//! ([`Network`]), identities from dfx and icp-cli PEM files
//! ([`identity`]) and canister ids from the project's state files
//! ([`canister_ids`]).
//!
//! The transport is blocking: each call runs on a small tokio runtime the
//! transport owns, so the suite's uploader can keep several calls in
//! flight from plain threads.
//!
//! ```no_run
//! use client::{AgentTransport, Network};
//! let network: Network = "http://127.0.0.1:4943".parse().unwrap();
//! let transport = AgentTransport::connect(&network, None).unwrap();
//! # let id = candid::Principal::anonymous();
//! let tm = suite::TaskManager::new(&transport, id);
//! println!("{:?}", tm.models().unwrap());
//! ```

pub mod canister_ids;
pub mod identity;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use candid::Principal;
use ic_agent::agent::RejectCode;
use ic_agent::identity::AnonymousIdentity;
use ic_agent::{Agent, AgentError, Identity};
use suite::{CallError, Transport};

pub use identity::{KeyKind, PemIdentity};

/// The boundary nodes of the IC mainnet.
pub const MAINNET_URL: &str = "https://icp-api.io";

/// Hosts that serve the IC mainnet (their root key is the one built into
/// `ic-agent`; it is never fetched from them).
const MAINNET_HOSTS: [&str; 4] = ["icp-api.io", "ic0.app", "icp0.io", "boundary.ic0.app"];

/// Which replica the command line talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The embedded local replica, in this process.
    Local,
    /// A replica or boundary node at this URL.
    Url {
        url: String,
        /// The IC mainnet: the root key is the built-in one.
        mainnet: bool,
    },
}

/// Why a network name or URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "network {0:?}: expected `local`, `ic` or a URL (http://127.0.0.1:4943, https://icp-api.io)"
)]
pub struct BadNetwork(pub String);

impl FromStr for Network {
    type Err = BadNetwork;

    fn from_str(s: &str) -> Result<Network, BadNetwork> {
        match s {
            "local" => Ok(Network::Local),
            "ic" => Ok(Network::Url {
                url: MAINNET_URL.to_string(),
                mainnet: true,
            }),
            _ => {
                let rest = s
                    .strip_prefix("http://")
                    .or_else(|| s.strip_prefix("https://"))
                    .ok_or_else(|| BadNetwork(s.to_string()))?;
                let host = host_of(rest);
                if host.is_empty() {
                    return Err(BadNetwork(s.to_string()));
                }
                Ok(Network::Url {
                    url: s.trim_end_matches('/').to_string(),
                    mainnet: MAINNET_HOSTS.contains(&host),
                })
            }
        }
    }
}

/// The host of `authority/path…` (no scheme), without port or user.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

impl Network {
    /// The icp-cli environments and dfx networks whose canister ids are
    /// this network's when no `--environment` is given: `ic` for mainnet,
    /// `local` for a replica on this machine (`dfx start`, `icp network
    /// start`, `icllm replica serve`), none for other URLs.
    pub fn default_environments(&self) -> Vec<String> {
        match self {
            Network::Local => vec!["local".into()],
            Network::Url { mainnet: true, .. } => vec!["ic".into()],
            Network::Url { url, .. } => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let host = host_of(rest);
                if host == "localhost" || host == "::1" || host.starts_with("127.") {
                    vec!["local".into()]
                } else {
                    vec![]
                }
            }
        }
    }
}

/// Why no transport could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the embedded local replica is not reached over HTTP")]
    LocalNetwork,
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("connecting to {url}: {source}")]
    Agent {
        url: String,
        source: Box<AgentError>,
    },
}

/// `ic-agent` as a blocking [`Transport`].
pub struct AgentTransport {
    agent: Agent,
    runtime: tokio::runtime::Runtime,
    caller: Principal,
    url: String,
}

impl AgentTransport {
    /// An agent for `network` signing as `identity` (anonymous when
    /// `None`). Off mainnet the root key is fetched from the replica.
    pub fn connect(
        network: &Network,
        identity: Option<&PemIdentity>,
    ) -> Result<AgentTransport, ClientError> {
        let Network::Url { url, mainnet } = network else {
            return Err(ClientError::LocalNetwork);
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        let identity: Arc<dyn Identity> = match identity {
            Some(id) => id.identity.clone(),
            None => Arc::new(AnonymousIdentity),
        };
        let caller = identity.sender().unwrap_or_else(|_| Principal::anonymous());
        let agent_error = |source| ClientError::Agent {
            url: url.clone(),
            source: Box::new(source),
        };
        let agent = Agent::builder()
            .with_url(url.as_str())
            .with_arc_identity(identity)
            .with_max_polling_time(Duration::from_secs(300))
            .build()
            .map_err(agent_error)?;
        if !mainnet {
            runtime
                .block_on(agent.fetch_root_key())
                .map_err(agent_error)?;
        }
        Ok(AgentTransport {
            agent,
            runtime,
            caller,
            url: url.clone(),
        })
    }

    /// The agent, for calls the suite does not make (the management
    /// canister).
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Runs `future` to completion on the transport's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates a canister holding `cycles` with the management canister's
    /// `provisional_create_canister_with_cycles` (local replicas and
    /// testnets only; mainnet refuses it) and installs `module` in it
    /// (gzip-compressed when plain wasm, so that a module up to a few MiB
    /// fits in one message) with the candid argument `arg`. The caller
    /// becomes its controller.
    pub fn create_and_install(
        &self,
        module: &[u8],
        arg: Vec<u8>,
        cycles: u128,
    ) -> Result<Principal, CallError> {
        #[derive(candid::CandidType)]
        struct CreateArgs {
            amount: Option<candid::Nat>,
            settings: Option<()>,
        }
        #[derive(candid::CandidType, serde::Deserialize)]
        struct CanisterIdRecord {
            canister_id: Principal,
        }
        #[derive(candid::CandidType, serde::Deserialize)]
        enum Mode {
            #[serde(rename = "install")]
            Install,
        }
        #[derive(candid::CandidType)]
        struct InstallArgs {
            mode: Mode,
            canister_id: Principal,
            wasm_module: serde_bytes::ByteBuf,
            arg: serde_bytes::ByteBuf,
        }
        let encode = |e: candid::Error| CallError::permanent(e.to_string());
        let mgmt = Principal::management_canister();
        let create = candid::encode_one(CreateArgs {
            amount: Some(candid::Nat::from(cycles)),
            settings: None,
        })
        .map_err(encode)?;
        // The first id of the local subnet's range routes the creation to
        // it (rwlgt-iiaaa-aaaaa-aaaaa-cai, as dfx and PocketIC use).
        let effective = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        let reply = self
            .block_on(
                self.agent
                    .update(&mgmt, "provisional_create_canister_with_cycles")
                    .with_effective_canister_id(effective)
                    .with_arg(create)
                    .call_and_wait(),
            )
            .map_err(classify)?;
        let CanisterIdRecord { canister_id } = candid::decode_one(&reply).map_err(encode)?;
        let wasm_module = suite::upload::compress_module(module)
            .map_err(|e| CallError::permanent(e.to_string()))?;
        let install = candid::encode_one(InstallArgs {
            mode: Mode::Install,
            canister_id,
            wasm_module: serde_bytes::ByteBuf::from(wasm_module),
            arg: serde_bytes::ByteBuf::from(arg),
        })
        .map_err(encode)?;
        self.block_on(
            self.agent
                .update(&mgmt, "install_code")
                .with_effective_canister_id(canister_id)
                .with_arg(install)
                .call_and_wait(),
        )
        .map_err(classify)?;
        Ok(canister_id)
    }
}

/// Whether a failed call may succeed when made again.
pub fn classify(e: AgentError) -> CallError {
    let message = e.to_string();
    match &e {
        AgentError::TransportError(_) | AgentError::TimeoutWaitingForResponse() => {
            CallError::transient(message)
        }
        AgentError::HttpError(p) if p.status == 429 || p.status >= 500 => {
            CallError::transient(message)
        }
        AgentError::CertifiedReject { reject, .. }
        | AgentError::UncertifiedReject { reject, .. }
            if reject.reject_code == RejectCode::SysTransient =>
        {
            CallError::transient(message)
        }
        AgentError::CertifiedReject { .. }
        | AgentError::UncertifiedReject { .. }
        | AgentError::HttpError(_) => CallError::rejected(message),
        _ => CallError::permanent(message),
    }
}

impl Transport for AgentTransport {
    fn update(
        &self,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        self.runtime
            .block_on(
                self.agent
                    .update(&canister, method)
                    .with_arg(arg)
                    .call_and_wait(),
            )
            .map_err(classify)
    }

    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.runtime
            .block_on(self.agent.query(&canister, method).with_arg(arg).call())
            .map_err(classify)
    }

    fn caller(&self) -> Principal {
        self.caller
    }

    fn pause(&self, interval: Duration) {
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse() {
        assert_eq!("local".parse::<Network>().unwrap(), Network::Local);
        assert_eq!(
            "ic".parse::<Network>().unwrap(),
            Network::Url {
                url: MAINNET_URL.into(),
                mainnet: true
            }
        );
        let served: Network = "http://127.0.0.1:4943/".parse().unwrap();
        assert_eq!(
            served,
            Network::Url {
                url: "http://127.0.0.1:4943".into(),
                mainnet: false
            }
        );
        assert_eq!(served.default_environments(), ["local"]);
        let boundary: Network = "https://icp0.io".parse().unwrap();
        assert!(matches!(boundary, Network::Url { mainnet: true, .. }));
        assert_eq!(boundary.default_environments(), ["ic"]);
        let testnet: Network = "https://user@testnet.example.org:8080/x".parse().unwrap();
        assert!(matches!(testnet, Network::Url { mainnet: false, .. }));
        assert!(testnet.default_environments().is_empty());
        let v6: Network = "http://[::1]:8000".parse().unwrap();
        assert_eq!(v6.default_environments(), ["local"]);
        for bad in ["mainnet", "ftp://x", "http://", "127.0.0.1:4943"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }
}
