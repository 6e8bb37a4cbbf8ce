//! `undeploy_model` (update, controllers): removes every pipeline of a
//! model; their workers become idle. Jobs running on them fail (charged
//! only what they streamed) and their drivers are told to stop; queued
//! jobs of the model time out unless it is deployed again. Returns the
//! ids of the pipelines removed.

use crate::AdminError;

/// The model's name.
pub type Args = String;
worker_api::named_result!(UndeployModelResult, Vec<u32>, AdminError);
pub type Response = UndeployModelResult;
