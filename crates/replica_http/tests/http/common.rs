//! A served replica with a counter canister, agents, raw HTTP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use candid::Principal;
use ic_agent::identity::BasicIdentity;
use ic_agent::{Agent, Identity};
use local_replica::management::{
    CanisterIdRecord, CanisterInstallMode, InstallCodeArgs, ProvisionalCreateCanisterArgs,
};
use replica_http::server::{serve, RunningServer, ServeConfig};

/// A counter in WAT: `inc` (update) adds one, sets it as certified data
/// and replies with it (8 bytes, little-endian); `read` (query) replies
/// with it; `has_certificate` (query) replies 1 if the query sees a data
/// certificate; `boom` traps; `no` (query) rejects; `canister_inspect_message`
/// refuses `refused`.
pub const COUNTER_WAT: &str = r#"
(module
  (import "ic0" "msg_reply_data_append" (func $reply_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "msg_method_name_size" (func $method_size (result i32)))
  (import "ic0" "accept_message" (func $accept))
  (import "ic0" "certified_data_set" (func $cert_set (param i32 i32)))
  (import "ic0" "data_certificate_present" (func $cert_present (result i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (memory 1)
  (global $n (mut i64) (i64.const 0))
  (data (i32.const 100) "boom! no thanks")
  (func $reply_n
    (i64.store (i32.const 0) (global.get $n))
    (call $reply_append (i32.const 0) (i32.const 8))
    (call $reply))
  (func (export "canister_update inc")
    (global.set $n (i64.add (global.get $n) (i64.const 1)))
    (i64.store (i32.const 0) (global.get $n))
    (call $cert_set (i32.const 0) (i32.const 8))
    (call $reply_n))
  (func (export "canister_query read") (call $reply_n))
  (func (export "canister_query has_certificate")
    (i32.store8 (i32.const 0) (call $cert_present))
    (call $reply_append (i32.const 0) (i32.const 1))
    (call $reply))
  (func (export "canister_update refused") (call $reply_n))
  (func (export "canister_update boom") (call $trap (i32.const 100) (i32.const 5)))
  (func (export "canister_query no") (call $reject (i32.const 106) (i32.const 9)))
  (func (export "canister_inspect_message")
    ;; "refused" is the only method name of 7 bytes.
    (if (i32.ne (call $method_size) (i32.const 7)) (then (call $accept))))
)
"#;

pub fn counter_wasm() -> Vec<u8> {
    wat::parse_str(COUNTER_WAT).expect("the counter's WAT parses")
}

/// A deterministic Ed25519 identity.
pub fn ed25519(seed: u8) -> BasicIdentity {
    BasicIdentity::from_raw_key(&[seed; 32])
}

/// A served replica, an agent with an Ed25519 identity (root key fetched,
/// query signatures verified), and the counter installed by that identity.
pub struct Env {
    pub server: RunningServer,
    pub agent: Agent,
    pub canister: Principal,
    pub rt: tokio::runtime::Runtime,
}

impl Env {
    pub fn start() -> Env {
        let server = serve(ServeConfig::default()).expect("the server starts");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let agent = rt.block_on(agent_for(&server, ed25519(1)));
        let canister = rt.block_on(create_and_install(&agent, &counter_wasm()));
        Env {
            server,
            agent,
            canister,
            rt,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The counter, by a query through the agent.
    pub fn counter(&self) -> u64 {
        let out = self
            .rt
            .block_on(self.agent.query(&self.canister, "read").call())
            .expect("read");
        u64::from_le_bytes(out.try_into().expect("8 bytes"))
    }

    /// An agent with `identity`, root key fetched.
    pub fn agent(&self, identity: impl Identity + 'static) -> Agent {
        self.rt.block_on(agent_for(&self.server, identity))
    }
}

pub async fn agent_for(server: &RunningServer, identity: impl Identity + 'static) -> Agent {
    let agent = Agent::builder()
        .with_url(server.url())
        .with_identity(identity)
        .build()
        .expect("an agent");
    agent.fetch_root_key().await.expect("the root key");
    agent
}

pub async fn create_and_install(agent: &Agent, wasm: &[u8]) -> Principal {
    let mgmt = Principal::management_canister();
    let out = agent
        .update(&mgmt, "provisional_create_canister_with_cycles")
        .with_effective_canister_id(local_replica::canister_id(0))
        .with_arg(candid::encode_one(ProvisionalCreateCanisterArgs::default()).unwrap())
        .call_and_wait()
        .await
        .expect("provisional_create_canister_with_cycles");
    let CanisterIdRecord { canister_id } = candid::decode_one(&out).expect("a canister id");
    let install = InstallCodeArgs {
        mode: CanisterInstallMode::Install,
        canister_id,
        wasm_module: wasm.to_vec(),
        arg: Vec::new(),
        sender_canister_version: None,
    };
    agent
        .update(&mgmt, "install_code")
        .with_effective_canister_id(canister_id)
        .with_arg(candid::encode_one(install).unwrap())
        .call_and_wait()
        .await
        .expect("install_code");
    canister_id
}

/// One raw HTTP/1.1 exchange: `(status, headers, body)`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send the head");
    // The server may answer before it has read everything (a refused
    // body); what it answered is still read below.
    let _ = stream.write_all(body);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head, out[split + 4..].to_vec())
}

/// POSTs a CBOR body.
pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/cbor")],
        body,
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sends `bytes` as they are (a hand-made request) and reads the answer:
/// `(status, body)`.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
