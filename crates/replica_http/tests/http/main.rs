//! The HTTP interface, end to end: the server runs in-process on a free
//! port, and the official Rust agent (`ic-agent`), icp-cli or raw HTTP
//! talks to it.

mod bad_envelopes;
mod common;
mod frontend;
mod icp_cli;
mod official_agent;
mod state_dir;
