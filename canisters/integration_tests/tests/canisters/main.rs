//! The canisters as the wasm they ship as, in the local replica. One test
//! binary, a module per area.

mod abuse;
mod example;
mod generation;
mod ic_rules;
mod lifecycle;
mod quantized;
mod registry;
mod smollm2;
mod users;
mod worker_protocol;
