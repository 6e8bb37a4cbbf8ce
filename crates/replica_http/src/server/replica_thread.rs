//! The thread that owns the [`LocalReplica`].
//!
//! It follows the wall clock (`set_time(now)` before every round), runs a
//! round whenever messages are pending and at least every
//! [`IDLE_ROUND`] otherwise (so timers fire), and answers the handler
//! threads' [`Command`]s between rounds. It keeps the request-status table
//! of ingress calls, which `read_state` certifies: `processing` from
//! submission, `replied`/`rejected` when answered, `done` once the call's
//! `ingress_expiry` has passed, and forgotten [`MAX_INGRESS_TTL`] +
//! [`PERMITTED_DRIFT`] after that, as the IC prunes its ingress history.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use candid::Principal;
use local_replica::{LocalReplica, Reject};

use crate::auth::{MAX_INGRESS_TTL, PERMITTED_DRIFT};
use crate::certification::{
    certificate, data_certificate, sign_query_response, CertifiedState, Keys, NodeSignature,
    QueryOutcome, RequestStatus,
};
use crate::envelope::CanisterCall;
use crate::hash::RequestId;

/// With no message pending, a round still runs this often (timers,
/// heartbeats, deadlines).
pub(crate) const IDLE_ROUND: Duration = Duration::from_millis(100);
/// How often the replica is checkpointed to the state directory (and once
/// more when the server stops). Incremental, so an idle replica's
/// checkpoint writes almost nothing.
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);

/// Nanoseconds since 1970-01-01 by the wall clock.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A rejection before the call entered the replica's state (the
/// specification's non-replicated rejection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub reject_code: u64,
    pub reject_message: String,
    pub error_code: Option<String>,
}

impl From<Reject> for Rejection {
    fn from(r: Reject) -> Rejection {
        Rejection {
            reject_code: r.code as u64,
            reject_message: r.message,
            error_code: r.error_code.map(|c| format!("IC{:04}", c as u32)),
        }
    }
}

/// A validated ingress call.
#[derive(Clone, Debug)]
pub(crate) struct IngressCall {
    pub request_id: RequestId,
    pub sender: Principal,
    pub call: CanisterCall,
    pub ingress_expiry: u64,
    pub effective_canister_id: Principal,
}

/// What became of a submitted call.
#[derive(Debug)]
pub(crate) enum Admission {
    /// In the replica's queue (or already known: a resubmission changes
    /// nothing).
    Accepted,
    /// Refused before it entered the replica's state.
    Rejected(Rejection),
    /// The replica failed (not the caller's fault).
    Internal(String),
}

/// A signed query answer.
#[derive(Debug)]
pub(crate) struct QueryAnswer {
    pub outcome: QueryOutcome,
    pub signature: NodeSignature,
}

/// Where a `read_state` request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadStateTarget {
    Canister(Principal),
    Subnet(Principal),
}

/// Why a `read_state` request is refused: an HTTP status and a reason.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: u16,
    pub message: String,
}

/// What connection threads ask of the replica thread.
pub(crate) enum Command {
    /// Submit an ingress call; with `wait`, the certificate of its status
    /// is sent there once it is replied, rejected or done.
    Call {
        call: IngressCall,
        admission: mpsc::Sender<Admission>,
        wait: Option<mpsc::Sender<Vec<u8>>>,
    },
    Query {
        request_id: RequestId,
        sender: Principal,
        call: CanisterCall,
        answer: mpsc::Sender<Result<QueryAnswer, String>>,
    },
    ReadState {
        sender: Principal,
        target: ReadStateTarget,
        paths: Vec<Vec<Vec<u8>>>,
        answer: mpsc::Sender<Result<Vec<u8>, Refusal>>,
    },
    Shutdown,
}

/// One ingress call the table tracks.
struct Tracked {
    status: RequestStatus,
    sender: Principal,
    effective_canister_id: Principal,
    ingress_expiry: u64,
    /// The replica's message id while the call is processing.
    message_id: Option<u64>,
}

pub(crate) struct ReplicaThread {
    replica: LocalReplica,
    keys: Arc<Keys>,
    commands: mpsc::Receiver<Command>,
    /// Where the replica's checkpoints are written (none: nothing kept).
    checkpoint_dir: Option<PathBuf>,
    last_checkpoint: Instant,
    requests: HashMap<RequestId, Tracked>,
    waiters: HashMap<RequestId, Vec<mpsc::Sender<Vec<u8>>>>,
    last_round: Instant,
}

impl ReplicaThread {
    pub(crate) fn new(
        replica: LocalReplica,
        keys: Arc<Keys>,
        commands: mpsc::Receiver<Command>,
        checkpoint_dir: Option<PathBuf>,
    ) -> ReplicaThread {
        ReplicaThread {
            replica,
            keys,
            commands,
            checkpoint_dir,
            last_checkpoint: Instant::now(),
            requests: HashMap::new(),
            waiters: HashMap::new(),
            last_round: Instant::now(),
        }
    }

    pub(crate) fn run(mut self) {
        self.replica.set_time(now_ns());
        loop {
            let wait = if self.replica.pending_messages() > 0 {
                Duration::ZERO
            } else {
                IDLE_ROUND.saturating_sub(self.last_round.elapsed())
            };
            match self.commands.recv_timeout(wait) {
                Ok(Command::Shutdown) => break,
                Ok(command) => {
                    self.replica.set_time(now_ns());
                    self.handle(command);
                    // Take what else has arrived before the next round.
                    let mut shutdown = false;
                    while let Ok(command) = self.commands.try_recv() {
                        if matches!(command, Command::Shutdown) {
                            shutdown = true;
                            break;
                        }
                        self.handle(command);
                    }
                    if shutdown {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if self.replica.pending_messages() > 0 || self.last_round.elapsed() >= IDLE_ROUND {
                self.round();
            }
            if self.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
                self.checkpoint();
            }
        }
        self.checkpoint();
    }

    /// Writes the replica to the checkpoint directory, between rounds
    /// (incremental: only pages changed since the last one). A failure is
    /// reported and the server goes on; the previous checkpoint stays whole.
    fn checkpoint(&mut self) {
        self.last_checkpoint = Instant::now();
        let Some(dir) = &self.checkpoint_dir else {
            return;
        };
        if let Err(e) = self.replica.checkpoint(dir) {
            eprintln!("replica: checkpoint to {} failed: {e}", dir.display());
        }
    }

    fn round(&mut self) {
        self.replica.set_time(now_ns());
        self.replica.tick();
        self.last_round = Instant::now();
        self.collect_results();
        self.prune();
        self.answer_waiters();
    }

    fn collect_results(&mut self) {
        for tracked in self.requests.values_mut() {
            let Some(id) = tracked.message_id else {
                continue;
            };
            if let Some(result) = self.replica.ingress_result(id) {
                tracked.message_id = None;
                tracked.status = match result {
                    Ok(reply) => RequestStatus::Replied(reply),
                    Err(reject) => {
                        let r = Rejection::from(reject);
                        RequestStatus::Rejected {
                            reject_code: r.reject_code,
                            reject_message: r.reject_message,
                            error_code: r.error_code,
                        }
                    }
                };
            }
        }
    }

    /// `replied`/`rejected` become `done` once the call's expiry passed;
    /// `done` calls are forgotten after the longest time a request could
    /// still be valid.
    fn prune(&mut self) {
        let now = self.replica.time();
        let keep = (MAX_INGRESS_TTL + PERMITTED_DRIFT).as_nanos() as u64;
        self.requests.retain(|_, t| {
            if now > t.ingress_expiry
                && matches!(
                    t.status,
                    RequestStatus::Replied(_) | RequestStatus::Rejected { .. }
                )
            {
                t.status = RequestStatus::Done;
            }
            !(t.status == RequestStatus::Done && now > t.ingress_expiry.saturating_add(keep))
        });
    }

    fn answer_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let finished: Vec<RequestId> = self
            .waiters
            .keys()
            .filter(|id| match self.requests.get(*id) {
                Some(t) => !matches!(
                    t.status,
                    RequestStatus::Processing | RequestStatus::Received
                ),
                None => true,
            })
            .copied()
            .collect();
        for id in finished {
            let Some(waiters) = self.waiters.remove(&id) else {
                continue;
            };
            let path = vec![b"request_status".to_vec(), id.to_vec()];
            match certificate(&self.keys, &self.certified_state(), &[path]) {
                Ok(cert) => {
                    for w in waiters {
                        let _ = w.send(cert.clone());
                    }
                }
                // Dropping the senders makes the handlers answer 202: the
                // client polls read_state instead.
                Err(_) => drop(waiters),
            }
        }
    }

    fn certified_state(&self) -> CertifiedState {
        let requests: BTreeMap<RequestId, RequestStatus> = self
            .requests
            .iter()
            .map(|(id, t)| (*id, t.status.clone()))
            .collect();
        CertifiedState::from_replica(&self.replica, requests)
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Call {
                call,
                admission,
                wait,
            } => {
                let request_id = call.request_id;
                let result = self.submit(call);
                let accepted = matches!(result, Admission::Accepted);
                let _ = admission.send(result);
                if let (true, Some(w)) = (accepted, wait) {
                    self.waiters.entry(request_id).or_default().push(w);
                    // A resubmitted call may already be answered.
                    self.answer_waiters();
                }
            }
            Command::Query {
                request_id,
                sender,
                call,
                answer,
            } => {
                let _ = answer.send(self.query(request_id, sender, call));
            }
            Command::ReadState {
                sender,
                target,
                paths,
                answer,
            } => {
                let _ = answer.send(self.read_state(sender, target, paths));
            }
            Command::Shutdown => {}
        }
    }

    fn submit(&mut self, call: IngressCall) -> Admission {
        if self.requests.contains_key(&call.request_id) {
            return Admission::Accepted;
        }
        // The replica refuses ingress whose expiry has passed by its clock
        // (the handler checked against the same wall clock a moment ago).
        if call.ingress_expiry < self.replica.time() {
            return Admission::Rejected(Rejection {
                reject_code: 2,
                reject_message: "the call expired before the replica received it".into(),
                error_code: None,
            });
        }
        let IngressCall {
            request_id,
            sender,
            call,
            ingress_expiry,
            effective_canister_id,
        } = call;
        match self
            .replica
            .submit_update(call.canister_id, sender, &call.method_name, call.arg)
        {
            Ok(message_id) => {
                self.requests.insert(
                    request_id,
                    Tracked {
                        status: RequestStatus::Processing,
                        sender,
                        effective_canister_id,
                        ingress_expiry,
                        message_id: Some(message_id),
                    },
                );
                Admission::Accepted
            }
            Err(local_replica::Error::Rejected(reject)) => Admission::Rejected(reject.into()),
            Err(other) => Admission::Internal(other.to_string()),
        }
    }

    fn query(
        &mut self,
        request_id: RequestId,
        sender: Principal,
        call: CanisterCall,
    ) -> Result<QueryAnswer, String> {
        // The data certificate: `/canister/<id>/certified_data` and `/time`
        // (request statuses are pruned away, so none are needed).
        let data_cert = if self.replica.canister_exists(call.canister_id) {
            let state = CertifiedState::from_replica(&self.replica, BTreeMap::new());
            data_certificate(&self.keys, &state, call.canister_id).ok()
        } else {
            None
        };
        let outcome = match self.replica.query_call_with_certificate(
            call.canister_id,
            sender,
            &call.method_name,
            call.arg,
            data_cert,
        ) {
            Ok(reply) => QueryOutcome::Replied(reply),
            Err(local_replica::Error::Rejected(reject)) => {
                let r = Rejection::from(reject);
                QueryOutcome::Rejected {
                    reject_code: r.reject_code,
                    reject_message: r.reject_message,
                    error_code: r.error_code,
                }
            }
            Err(other) => return Err(other.to_string()),
        };
        let signature = sign_query_response(&self.keys, request_id, now_ns(), &outcome);
        Ok(QueryAnswer { outcome, signature })
    }

    fn read_state(
        &mut self,
        sender: Principal,
        target: ReadStateTarget,
        paths: Vec<Vec<Vec<u8>>>,
    ) -> Result<Vec<u8>, Refusal> {
        self.check_paths(sender, target, &paths)?;
        certificate(&self.keys, &self.certified_state(), &paths).map_err(|e| Refusal {
            status: 500,
            message: format!("the certificate could not be made: {e}"),
        })
    }

    /// The specification's rules for which paths a `read_state` request
    /// may ask for ("Request: Read state").
    fn check_paths(
        &self,
        sender: Principal,
        target: ReadStateTarget,
        paths: &[Vec<Vec<u8>>],
    ) -> Result<(), Refusal> {
        let bad = |message: String| Refusal {
            status: 400,
            message,
        };
        let mut request_id: Option<&[u8]> = None;
        for path in paths {
            let label = |i: usize| path.get(i).map(Vec::as_slice);
            match label(0) {
                Some(b"time") if path.len() == 1 => {}
                Some(b"api_boundary_nodes") if path.len() <= 3 => {}
                Some(b"subnet") if path.len() <= 5 => {
                    if label(2) == Some(b"metrics".as_slice())
                        && !matches!(target, ReadStateTarget::Subnet(_))
                    {
                        return Err(bad(
                            "/subnet/<id>/metrics can only be read at /api/v3/subnet/<id>/read_state"
                                .into(),
                        ));
                    }
                }
                Some(b"canister_ranges") if path.len() <= 3 => {
                    if !matches!(target, ReadStateTarget::Subnet(_)) {
                        return Err(bad(
                            "/canister_ranges can only be read at /api/v3/subnet/<id>/read_state"
                                .into(),
                        ));
                    }
                }
                Some(b"request_status") if (2..=3).contains(&path.len()) => {
                    let id = path[1].as_slice();
                    if request_id.is_some_and(|other| other != id) {
                        return Err(bad(
                            "all /request_status paths must name the same request".into()
                        ));
                    }
                    request_id = Some(id);
                    if let Some(field) = label(2) {
                        if !matches!(
                            field,
                            b"status"
                                | b"reply"
                                | b"reject_code"
                                | b"reject_message"
                                | b"error_code"
                        ) {
                            return Err(bad(format!(
                                "/request_status/<id>/{} is not a request status field",
                                String::from_utf8_lossy(field)
                            )));
                        }
                    }
                    let Ok(id) = <RequestId>::try_from(id) else {
                        continue;
                    };
                    if let Some(t) = self.requests.get(&id) {
                        let same_target = match target {
                            ReadStateTarget::Canister(c) => c == t.effective_canister_id,
                            ReadStateTarget::Subnet(s) => s == self.keys.subnet_id(),
                        };
                        if t.sender != sender || !same_target {
                            return Err(Refusal {
                                status: 403,
                                message: format!(
                                    "request 0x{} was not sent by {sender} to this effective id",
                                    hex::encode(id)
                                ),
                            });
                        }
                    }
                }
                Some(b"canister") if (3..=4).contains(&path.len()) => {
                    let ReadStateTarget::Canister(effective) = target else {
                        return Err(bad(
                            "/canister paths can only be read at /api/v3/canister/<id>/read_state"
                                .into(),
                        ));
                    };
                    if path[1] != effective.as_slice() {
                        return Err(bad(format!(
                            "the effective canister id {effective} does not match the canister \
                             of the path ({})",
                            Principal::try_from_slice(&path[1])
                                .map(|p| p.to_text())
                                .unwrap_or_else(|_| hex::encode(&path[1]))
                        )));
                    }
                    match (label(2), path.len()) {
                        (Some(b"module_hash" | b"controllers"), 3) => {}
                        (Some(b"metadata"), 4) if std::str::from_utf8(&path[3]).is_ok() => {}
                        _ => {
                            return Err(bad(format!(
                                "/canister/<id>/{} cannot be read (module_hash, controllers \
                                 and metadata/<name> can)",
                                String::from_utf8_lossy(&path[2])
                            )))
                        }
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "the path /{} cannot be read",
                        path.iter()
                            .map(|l| String::from_utf8_lossy(l).into_owned())
                            .collect::<Vec<_>>()
                            .join("/")
                    )))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTER: &str = r#"
    (module
      (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
      (import "ic0" "msg_reply" (func $reply))
      (memory 1)
      (global $n (mut i64) (i64.const 0))
      (func (export "canister_update inc")
        (global.set $n (i64.add (global.get $n) (i64.const 1)))
        (i64.store (i32.const 0) (global.get $n))
        (call $append (i32.const 0) (i32.const 8))
        (call $reply)))
    "#;

    fn status(t: &ReplicaThread, id: &RequestId) -> Option<RequestStatus> {
        t.requests.get(id).map(|r| r.status.clone())
    }

    /// processing → replied → done after the expiry → forgotten six
    /// minutes later; a resubmission never runs the call twice.
    #[test]
    fn request_statuses_live_and_expire_as_on_the_ic() {
        let user = Principal::from_slice(&[0xaa; 29]);
        let mut replica = LocalReplica::new().unwrap();
        let canister = replica.create_canister(user).unwrap();
        replica
            .install_canister(user, canister, wat::parse_str(COUNTER).unwrap(), Vec::new())
            .unwrap();
        let keys = Arc::new(Keys::load_or_create(None).unwrap());
        let (_commands, receiver) = mpsc::channel();
        let mut t = ReplicaThread::new(replica, keys, receiver, None);
        t.replica.set_time(now_ns());
        let now = t.replica.time();
        let call = IngressCall {
            request_id: [1; 32],
            sender: user,
            call: CanisterCall {
                canister_id: canister,
                method_name: "inc".into(),
                arg: Vec::new(),
            },
            ingress_expiry: now + 60_000_000_000,
            effective_canister_id: canister,
        };
        let id = call.request_id;
        assert!(matches!(t.submit(call.clone()), Admission::Accepted));
        assert_eq!(status(&t, &id), Some(RequestStatus::Processing));
        t.round();
        let one = RequestStatus::Replied(1u64.to_le_bytes().to_vec());
        assert_eq!(status(&t, &id), Some(one.clone()));

        // The same request again: accepted, not run again.
        assert!(matches!(t.submit(call.clone()), Admission::Accepted));
        t.round();
        assert_eq!(status(&t, &id), Some(one));
        assert_eq!(t.replica.pending_messages(), 0);

        t.replica.advance_time(Duration::from_secs(61));
        t.round();
        assert_eq!(status(&t, &id), Some(RequestStatus::Done));
        // Still remembered (so not replayable) for the longest validity.
        assert!(matches!(t.submit(call.clone()), Admission::Accepted));
        assert_eq!(t.replica.pending_messages(), 0);

        t.replica.advance_time(MAX_INGRESS_TTL + PERMITTED_DRIFT);
        t.round();
        assert_eq!(status(&t, &id), None);
        // Forgotten, and expired: a replay is refused, not run.
        assert!(matches!(t.submit(call), Admission::Rejected(_)));
        assert_eq!(t.replica.pending_messages(), 0);

        // A second call runs: the counter was incremented once only.
        let second = IngressCall {
            request_id: [2; 32],
            sender: user,
            call: CanisterCall {
                canister_id: canister,
                method_name: "inc".into(),
                arg: Vec::new(),
            },
            ingress_expiry: t.replica.time() + 60_000_000_000,
            effective_canister_id: canister,
        };
        assert!(matches!(t.submit(second), Admission::Accepted));
        t.round();
        assert_eq!(
            status(&t, &[2; 32]),
            Some(RequestStatus::Replied(2u64.to_le_bytes().to_vec()))
        );
    }
}
