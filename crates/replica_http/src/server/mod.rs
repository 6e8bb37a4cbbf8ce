//! The HTTP server: one thread owns the replica, one thread per connection
//! speaks HTTP.
//!
//! ```text
//!  HTTP clients ──► connection threads (http1)           replica thread
//!                   parse envelope, check expiry,  ──►   owns LocalReplica (not Sync)
//!                   signatures, delegations,   Command   set_time(wall clock) each round,
//!                   effective canister id       ◄──      rounds while messages are pending
//!                                              answer    and every 100 ms (timers); the
//!                                                        request-status table; certificates
//! ```
//!
//! Nothing a connection thread refuses reaches the replica thread, so a
//! malformed, unauthenticated or expired request changes no state.
//!
//! ```no_run
//! use replica_http::server::{serve, ServeConfig};
//! let server = serve(ServeConfig::default())?;          // 127.0.0.1, any free port
//! println!("{} root key {}", server.url(), hex::encode(server.root_key_der()));
//! server.shutdown();
//! # Ok::<(), replica_http::server::ServeError>(())
//! ```

mod effective;
mod handlers;
mod http1;
mod replica_thread;
pub mod static_files;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use local_replica::LocalReplica;

use crate::certification::{CertificationError, Keys};
use handlers::Handler;
use replica_thread::{Command, ReplicaThread};

pub use handlers::{AUTH_FAILURE_STATUS, MAX_BODY_BYTES};

/// What to serve and where.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The address to listen on (default 127.0.0.1).
    pub bind: IpAddr,
    /// The port; 0 picks any free port (see [`RunningServer::url`]).
    pub port: u16,
    /// Where the root and node keys and the replica's checkpoints
    /// ([`CHECKPOINT_DIR`]) are kept between runs. `None`: fresh keys in
    /// memory, nothing kept.
    pub state_dir: Option<PathBuf>,
    /// The replica's settings. Its `root_key` is replaced by the served
    /// root key, so that `ic0.root_key_*` gives canisters the key their
    /// certificates verify with. By default the system canisters (the
    /// cycles ledger and the CMC, which `icp deploy` needs) exist.
    pub replica: local_replica::Config,
    /// Cycles ledger balances raised to at least these amounts at start
    /// (fresh or restored; see [`LocalReplica::seed_cycles`]).
    pub seed_cycles: Vec<(candid::Principal, u128)>,
    /// How long `/api/v3|v4/canister/<id>/call` waits for the call's result
    /// before answering 202 (the client then polls `read_state`).
    pub sync_call_timeout: Duration,
    /// A directory whose files are served for `GET` requests outside
    /// `/api/` (a built web frontend, on the same origin as the API; see
    /// [`static_files`]). `None`: only the API is served.
    pub frontend: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            state_dir: None,
            replica: local_replica::Config {
                system_canisters: Some(local_replica::SystemCanistersConfig::default()),
                // A server runs for days: keep what a person inspecting it
                // needs, not every message ever executed.
                history_limit: Some(SERVED_HISTORY),
                ..local_replica::Config::default()
            },
            seed_cycles: Vec::new(),
            sync_call_timeout: Duration::from_secs(10),
            frontend: None,
        }
    }
}

/// Execution records, log lines and `raw_rand` answers a served replica
/// keeps (the newest ones).
pub const SERVED_HISTORY: usize = 10_000;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("keys: {0}")]
    Keys(#[from] CertificationError),
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("the local replica did not start: {0}")]
    Replica(#[from] local_replica::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error(
        "the checkpoint in {dir} was made under another root key than the one in the state \
         directory's keys/: restore the keys it was made with, or start from an empty directory"
    )]
    KeyMismatch { dir: PathBuf },
    #[error("cannot serve the frontend directory {path}: {source}")]
    Frontend {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where, under the state directory, the replica's checkpoints are kept.
pub const CHECKPOINT_DIR: &str = "replica";

/// Whether `dir` holds a checkpoint to restore (any `checkpoint.*.bin`).
fn has_checkpoint(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("checkpoint.") && name.ends_with(".bin")
        })
    })
}

/// Stops a [`RunningServer`] from another thread (a signal handler).
#[derive(Clone)]
pub struct Stopper {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    commands: mpsc::Sender<Command>,
}

impl Stopper {
    /// Stops accepting connections and ends the replica thread after it
    /// has written its last checkpoint; [`RunningServer::join`] returns then.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        let _ = self.commands.send(Command::Shutdown);
    }
}

/// A server that runs until [`RunningServer::shutdown`] (or until the
/// process ends).
pub struct RunningServer {
    addr: SocketAddr,
    root_key_der: Vec<u8>,
    stop: Arc<AtomicBool>,
    commands: mpsc::Sender<Command>,
    threads: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// `http://<ip>:<port>`, what agents are given as their URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The DER-encoded BLS root key certificates are signed with (what
    /// `/api/v2/status` gives as `root_key`).
    pub fn root_key_der(&self) -> Vec<u8> {
        self.root_key_der.clone()
    }

    /// Stops accepting connections, lets the replica thread finish its
    /// round, and waits for both. Open connections end at their next
    /// request (503) or when idle.
    pub fn shutdown(self) {
        self.stopper().stop();
        self.join();
    }

    /// A handle that stops the server from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            addr: self.addr,
            stop: self.stop.clone(),
            commands: self.commands.clone(),
        }
    }

    /// Waits until the accept loop and the replica thread have ended
    /// (after a shutdown, or forever).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Starts the replica and the HTTP server.
pub fn serve(config: ServeConfig) -> Result<RunningServer, ServeError> {
    if let Some(dir) = &config.state_dir {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::StateDir {
            path: dir.clone(),
            source,
        })?;
    }
    let frontend =
        match &config.frontend {
            Some(path) => Some(static_files::StaticFiles::new(path).map_err(|source| {
                ServeError::Frontend {
                    path: path.clone(),
                    source,
                }
            })?),
            None => None,
        };
    let keys = Arc::new(Keys::load_or_create(config.state_dir.as_deref())?);
    let root_key_der = keys.root_key_der();
    let mut replica_config = config.replica.clone();
    replica_config.root_key = Some(root_key_der.clone());
    let max_ingress_bytes = replica_config.limits.max_ingress_bytes;
    // A state directory that holds a checkpoint is where the last run
    // stopped: its canisters, messages in flight and time come back.
    let checkpoint_dir = config.state_dir.as_ref().map(|d| d.join(CHECKPOINT_DIR));
    let mut replica = match &checkpoint_dir {
        Some(dir) if has_checkpoint(dir) => {
            let replica = LocalReplica::restore(dir, replica_config)?;
            if replica.root_key() != root_key_der.as_slice() {
                return Err(ServeError::KeyMismatch { dir: dir.clone() });
            }
            replica
        }
        _ => LocalReplica::with_config(replica_config)?,
    };
    for (owner, amount) in &config.seed_cycles {
        replica.seed_cycles(*owner, *amount);
    }

    let addr = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(addr).map_err(|e| ServeError::Bind {
        addr,
        reason: e.to_string(),
    })?;
    let addr = listener.local_addr().unwrap_or(addr);

    let (commands, receiver) = mpsc::channel();
    let mut threads = Vec::new();
    let replica_thread = ReplicaThread::new(replica, keys.clone(), receiver, checkpoint_dir);
    threads.push(
        std::thread::Builder::new()
            .name("replica".into())
            .spawn(move || replica_thread.run())
            .map_err(ServeError::Thread)?,
    );
    let handler = Arc::new(Handler {
        keys,
        commands: commands.clone(),
        sync_call_timeout: config.sync_call_timeout,
        max_ingress_bytes,
        frontend,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stop_accepting = stop.clone();
    threads.push(
        std::thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || http1::accept_loop(listener, handler, stop_accepting))
            .map_err(ServeError::Thread)?,
    );
    Ok(RunningServer {
        addr,
        root_key_der,
        stop,
        commands,
        threads,
    })
}
