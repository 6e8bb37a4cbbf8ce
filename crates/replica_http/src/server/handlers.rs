//! HTTP handling: routing, bodies, envelopes, authentication, and the
//! answers' CBOR, in the connection threads.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /api/v2/status` | CBOR status with `root_key` |
//! | `POST /api/v2/canister/<id>/call` | asynchronous call: 202, or 200 with a non-replicated rejection |
//! | `POST /api/v3/canister/<id>/call`, `/api/v4/…` | synchronous call: 200 with a certificate, or 202 after the timeout |
//! | `POST /api/v2/canister/<id>/query`, `/api/v3/…` | query, signed by the node key |
//! | `POST /api/v2/canister/<id>/read_state`, `/api/v3/…` | certificate pruned to the paths |
//! | `POST /api/v2/subnet/<id>/read_state`, `/api/v3/…` | the same, for subnet paths |
//! | `OPTIONS` anything | CORS preflight |
//! | `GET` outside `/api/` | a file of the frontend directory, when one is served ([`super::static_files`]) |
//!
//! Refusals are plain text: 400 for bodies that are not envelopes, bad
//! expiries, failed authentication (as the current replica answers
//! validation errors, [`AUTH_FAILURE_STATUS`]) and wrong effective ids; 403
//! for reading another sender's request status; 404 for unknown paths;
//! 405 for wrong methods; 413 for bodies over [`MAX_BODY_BYTES`] or calls
//! over the replica's ingress limit.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use candid::Principal;

use super::effective;
use super::http1::{self, Response, Service};
use super::replica_thread::{
    now_ns, Admission, Command, IngressCall, QueryAnswer, ReadStateTarget, Rejection,
};
use super::static_files::StaticFiles;
use crate::auth;
use crate::cbor::{map, Cbor};
use crate::certification::{canister_range, Keys, QueryOutcome};
use crate::envelope::{self, Envelope, Request};

/// The largest request body accepted (the replica's HTTP limit, 5 MiB).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// The status of requests that fail authentication (bad signature, sender
/// not derived from the key, delegation refused). The IC's replica answers
/// every request validation error with 400 (`dfinity/ic`,
/// `http_endpoints/public`, `validation_error_to_http_error`); releases
/// before 2024 used 403 for authentication failures.
pub const AUTH_FAILURE_STATUS: u16 = 400;

/// The interface specification version the endpoints follow.
const IC_API_VERSION: &str = "0.18.0";

pub(crate) struct Handler {
    pub keys: Arc<Keys>,
    pub commands: mpsc::Sender<Command>,
    pub sync_call_timeout: Duration,
    pub max_ingress_bytes: u64,
    /// The frontend served outside `/api/` (`ServeConfig::frontend`).
    pub frontend: Option<StaticFiles>,
}

/// An HTTP answer.
struct Reply {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    /// `Cache-Control`, for the frontend's files.
    cache_control: Option<&'static str>,
}

impl Reply {
    fn text(status: u16, message: impl Into<String>) -> Reply {
        Reply {
            status,
            body: message.into().into_bytes(),
            content_type: "text/plain; charset=utf-8",
            cache_control: None,
        }
    }

    fn cbor(item: Cbor) -> Reply {
        Reply {
            status: 200,
            body: item.encode_self_described(),
            content_type: "application/cbor",
            cache_control: None,
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: Vec::new(),
            content_type: "text/plain; charset=utf-8",
            cache_control: None,
        }
    }
}

type Answer = Result<Reply, Reply>;

enum Endpoint {
    Status,
    Call { canister: String, sync: bool },
    Query { canister: String },
    ReadState { canister: String },
    SubnetReadState { subnet: String },
}

fn route(path: &str) -> Option<Endpoint> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    Some(match parts.as_slice() {
        ["", "api", "v2", "status"] => Endpoint::Status,
        ["", "api", v, "canister", id, "call"] if matches!(*v, "v2" | "v3" | "v4") => {
            Endpoint::Call {
                canister: id.to_string(),
                sync: *v != "v2",
            }
        }
        ["", "api", "v2" | "v3", "canister", id, "query"] => Endpoint::Query {
            canister: id.to_string(),
        },
        ["", "api", "v2" | "v3", "canister", id, "read_state"] => Endpoint::ReadState {
            canister: id.to_string(),
        },
        ["", "api", "v2" | "v3", "subnet", id, "read_state"] => Endpoint::SubnetReadState {
            subnet: id.to_string(),
        },
        _ => return None,
    })
}

impl Service for Handler {
    fn max_body(&self) -> usize {
        MAX_BODY_BYTES
    }

    fn serve(&self, request: &http1::Request) -> Response {
        let reply = self.answer(request).unwrap_or_else(|refusal| refusal);
        respond(reply, request.header("Access-Control-Request-Headers"))
    }

    fn refuse(&self, status: u16, reason: String) -> Response {
        respond(Reply::text(status, reason), None)
    }
}

/// The answer with its content type and the CORS headers every answer
/// carries.
fn respond(reply: Reply, requested_headers: Option<&str>) -> Response {
    let mut response = Response {
        status: reply.status,
        headers: vec![
            ("Content-Type", reply.content_type.to_string()),
            ("Access-Control-Allow-Origin", "*".to_string()),
            (
                "Access-Control-Allow-Methods",
                "GET, POST, OPTIONS".to_string(),
            ),
            (
                "Access-Control-Allow-Headers",
                requested_headers.unwrap_or("Content-Type").to_string(),
            ),
            ("Access-Control-Max-Age", "7200".to_string()),
        ],
        body: reply.body,
    };
    if let Some(cache_control) = reply.cache_control {
        response
            .headers
            .push(("Cache-Control", cache_control.to_string()));
        response
            .headers
            .push(("X-Content-Type-Options", "nosniff".to_string()));
    }
    response
}

impl Handler {
    fn answer(&self, request: &http1::Request) -> Answer {
        let path = request.target.split('?').next().unwrap_or("");
        let method = request.method.as_str();
        if method == "OPTIONS" {
            return Ok(Reply::empty(204));
        }
        if let Some(files) = &self.frontend {
            if !path.starts_with("/api/") {
                return self.frontend_file(files, path, method);
            }
        }
        let endpoint =
            route(path).ok_or_else(|| Reply::text(404, format!("no endpoint at {path}")))?;
        let expected = match endpoint {
            Endpoint::Status => "GET",
            _ => "POST",
        };
        if method != expected {
            return Err(Reply::text(
                405,
                format!("{path} takes {expected}, not {method}"),
            ));
        }
        let body = &request.body;
        match endpoint {
            Endpoint::Status => Ok(self.status()),
            Endpoint::Call { canister, sync } => {
                let id = self.canister_in_range(&canister)?;
                self.call(id, body, sync)
            }
            Endpoint::Query { canister } => {
                let id = self.canister_in_range(&canister)?;
                self.query(id, body)
            }
            Endpoint::ReadState { canister } => {
                let id = self.canister_in_range(&canister)?;
                self.read_state(ReadStateTarget::Canister(id), body)
            }
            Endpoint::SubnetReadState { subnet } => {
                let id = parse_principal(&subnet, "subnet id")?;
                if id != self.keys.subnet_id() {
                    return Err(Reply::text(
                        400,
                        format!(
                            "subnet {id} is not this replica's subnet ({})",
                            self.keys.subnet_id()
                        ),
                    ));
                }
                self.read_state(ReadStateTarget::Subnet(id), body)
            }
        }
    }

    /// A file of the frontend (`GET` only).
    fn frontend_file(&self, files: &StaticFiles, path: &str, method: &str) -> Answer {
        if method != "GET" {
            return Err(Reply::text(
                405,
                format!("{path} is a file of the frontend: it takes GET, not {method}"),
            ));
        }
        let file = files
            .get(path)
            .map_err(|e| Reply::text(e.status(), e.to_string()))?;
        Ok(Reply {
            status: 200,
            body: file.body,
            content_type: file.content_type,
            cache_control: Some(file.cache_control),
        })
    }

    fn status(&self) -> Reply {
        Reply::cbor(map([
            ("ic_api_version", Cbor::Text(IC_API_VERSION.into())),
            ("impl_source", Cbor::Text("icllm local_replica".into())),
            (
                "impl_version",
                Cbor::Text(env!("CARGO_PKG_VERSION").to_string()),
            ),
            ("replica_health_status", Cbor::Text("healthy".into())),
            ("root_key", Cbor::Bytes(self.keys.root_key_der())),
        ]))
    }

    /// The URL's canister id, which must be in this subnet's range.
    fn canister_in_range(&self, text: &str) -> Result<Principal, Reply> {
        let id = parse_principal(text, "effective canister id")?;
        let (first, last) = canister_range();
        let bytes = id.as_slice();
        if bytes.len() != first.as_slice().len()
            || bytes < first.as_slice()
            || bytes > last.as_slice()
        {
            return Err(Reply::text(
                400,
                format!(
                    "canister id {id} is not in this subnet's canister range \
                     ({first} to {last})"
                ),
            ));
        }
        Ok(id)
    }

    /// Parses and authenticates an envelope of `request_type` `kind`.
    fn authenticated(
        &self,
        body: &[u8],
        kind: &'static str,
    ) -> Result<(Envelope, auth::Authorized), Reply> {
        let env = envelope::parse(body).map_err(|e| Reply::text(400, e.to_string()))?;
        let found = env.content.request.request_type();
        if found != kind {
            return Err(Reply::text(
                400,
                envelope::EnvelopeError::WrongRequestType {
                    expected: kind,
                    found: found.to_string(),
                }
                .to_string(),
            ));
        }
        let now = now_ns();
        // Anonymous queries and read_state requests may carry any expiry
        // (the specification allows it; tools send them without a clock).
        let anonymous = env.content.sender == Principal::anonymous();
        if kind == "call" || !anonymous {
            auth::check_expiry(env.content.ingress_expiry, now)
                .map_err(|e| Reply::text(400, e.to_string()))?;
        }
        let root_key = self.keys.root_key_der();
        let who = auth::authenticate_with_root_key(&env, now, Some(&root_key))
            .map_err(|e| Reply::text(AUTH_FAILURE_STATUS, e.to_string()))?;
        Ok((env, who))
    }

    fn call(&self, url_id: Principal, body: &[u8], sync: bool) -> Answer {
        let (env, who) = self.authenticated(body, "call")?;
        let Request::Call(call) = env.content.request else {
            return Err(Reply::text(400, "not a call"));
        };
        who.check_target(call.canister_id)
            .map_err(|e| Reply::text(AUTH_FAILURE_STATUS, e.to_string()))?;
        effective::check(url_id, call.canister_id, &call.method_name, &call.arg, true)
            .map_err(|e| Reply::text(400, e.to_string()))?;
        let size = (call.arg.len() + call.method_name.len()) as u64;
        if size > self.max_ingress_bytes {
            return Err(Reply::text(
                413,
                format!(
                    "the call's argument and method name are {size} bytes; at most {} are \
                     allowed",
                    self.max_ingress_bytes
                ),
            ));
        }
        let (admission_tx, admission_rx) = mpsc::channel();
        let (wait_tx, wait_rx) = mpsc::channel();
        self.send(Command::Call {
            call: IngressCall {
                request_id: env.request_id,
                sender: who.sender,
                call,
                ingress_expiry: env.content.ingress_expiry,
                effective_canister_id: url_id,
            },
            admission: admission_tx,
            wait: sync.then_some(wait_tx),
        })?;
        match admission_rx.recv().map_err(|_| stopped())? {
            Admission::Accepted if !sync => Ok(Reply::empty(202)),
            Admission::Accepted => match wait_rx.recv_timeout(self.sync_call_timeout) {
                Ok(certificate) => Ok(Reply::cbor(map([
                    ("status", Cbor::Text("replied".into())),
                    ("certificate", Cbor::Bytes(certificate)),
                ]))),
                Err(_) => Ok(Reply::empty(202)),
            },
            Admission::Rejected(r) => Ok(Reply::cbor(rejection(&r, sync))),
            Admission::Internal(e) => Err(Reply::text(500, e)),
        }
    }

    fn query(&self, url_id: Principal, body: &[u8]) -> Answer {
        let (env, who) = self.authenticated(body, "query")?;
        let Request::Query(call) = env.content.request else {
            return Err(Reply::text(400, "not a query"));
        };
        who.check_target(call.canister_id)
            .map_err(|e| Reply::text(AUTH_FAILURE_STATUS, e.to_string()))?;
        effective::check(
            url_id,
            call.canister_id,
            &call.method_name,
            &call.arg,
            false,
        )
        .map_err(|e| Reply::text(400, e.to_string()))?;
        let (tx, rx) = mpsc::channel();
        self.send(Command::Query {
            request_id: env.request_id,
            sender: who.sender,
            call,
            answer: tx,
        })?;
        let QueryAnswer { outcome, signature } = rx
            .recv()
            .map_err(|_| stopped())?
            .map_err(|e| Reply::text(500, e))?;
        let signatures = Cbor::Array(vec![map([
            ("timestamp", Cbor::Uint(signature.timestamp)),
            ("signature", Cbor::Bytes(signature.signature)),
            (
                "identity",
                Cbor::Bytes(signature.identity.as_slice().to_vec()),
            ),
        ])]);
        let mut fields = match outcome {
            QueryOutcome::Replied(arg) => vec![
                ("status", Cbor::Text("replied".into())),
                ("reply", map([("arg", Cbor::Bytes(arg))])),
            ],
            QueryOutcome::Rejected {
                reject_code,
                reject_message,
                error_code,
            } => {
                let mut f = vec![
                    ("status", Cbor::Text("rejected".into())),
                    ("reject_code", Cbor::Uint(reject_code)),
                    ("reject_message", Cbor::Text(reject_message)),
                ];
                if let Some(code) = error_code {
                    f.push(("error_code", Cbor::Text(code)));
                }
                f
            }
        };
        fields.push(("signatures", signatures));
        Ok(Reply::cbor(map(fields)))
    }

    fn read_state(&self, target: ReadStateTarget, body: &[u8]) -> Answer {
        let (env, who) = self.authenticated(body, "read_state")?;
        let Request::ReadState { paths } = env.content.request else {
            return Err(Reply::text(400, "not a read_state request"));
        };
        let (tx, rx) = mpsc::channel();
        self.send(Command::ReadState {
            sender: who.sender,
            target,
            paths,
            answer: tx,
        })?;
        match rx.recv().map_err(|_| stopped())? {
            Ok(certificate) => Ok(Reply::cbor(map([(
                "certificate",
                Cbor::Bytes(certificate),
            )]))),
            Err(refusal) => Err(Reply::text(refusal.status, refusal.message)),
        }
    }

    fn send(&self, command: Command) -> Result<(), Reply> {
        self.commands.send(command).map_err(|_| stopped())
    }
}

/// A non-replicated rejection: `{reject_code, reject_message,
/// error_code?}`, with `status: "non_replicated_rejection"` from the
/// synchronous endpoints.
fn rejection(r: &Rejection, sync: bool) -> Cbor {
    let mut fields = Vec::new();
    if sync {
        fields.push(("status", Cbor::Text("non_replicated_rejection".into())));
    }
    fields.push(("reject_code", Cbor::Uint(r.reject_code)));
    fields.push(("reject_message", Cbor::Text(r.reject_message.clone())));
    if let Some(code) = &r.error_code {
        fields.push(("error_code", Cbor::Text(code.clone())));
    }
    map(fields)
}

fn stopped() -> Reply {
    Reply::text(503, "the replica has stopped")
}

fn parse_principal(text: &str, what: &str) -> Result<Principal, Reply> {
    Principal::from_text(text)
        .map_err(|e| Reply::text(400, format!("{what} {text:?} is not a principal: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/api/v2/status"), Some(Endpoint::Status)));
        assert!(matches!(
            route("/api/v2/canister/aaaaa-aa/call"),
            Some(Endpoint::Call { sync: false, .. })
        ));
        for v in ["v3", "v4"] {
            assert!(matches!(
                route(&format!("/api/{v}/canister/aaaaa-aa/call")),
                Some(Endpoint::Call { sync: true, .. })
            ));
        }
        assert!(matches!(
            route("/api/v3/canister/x/query"),
            Some(Endpoint::Query { .. })
        ));
        assert!(matches!(
            route("/api/v2/subnet/x/read_state"),
            Some(Endpoint::SubnetReadState { .. })
        ));
        assert!(route("/api/v4/canister/x/query").is_none());
        assert!(route("/api/v2/canister/x").is_none());
        assert!(route("/").is_none());
    }
}
