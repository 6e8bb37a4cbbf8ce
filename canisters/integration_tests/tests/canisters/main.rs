//! The canisters as the wasm they ship as, in the local replica. One test
//! binary, a module per area.

mod registry;
mod users;
