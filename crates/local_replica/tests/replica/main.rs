//! The local replica running the test canisters of `crates/test_canisters`
//! (built here for wasm32-unknown-unknown, release), one module per area.

mod checkpoint;
mod common;
mod costs;
mod cycles;
mod data_certificate;
mod execution;
mod limits;
mod management;
mod messaging;
mod timers;
mod validation;
