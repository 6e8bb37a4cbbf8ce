//! Result types several endpoints share (one name per shape, so the
//! `.did` shows the same name wherever the same answer comes back).

use serde_bytes::ByteBuf;

use crate::{AdminError, Config, JobInfo, UserError, UserProfile, WorkerInfo};

worker_api::named_result!(
    /// A controller's change that returns nothing.
    AdminResult,
    (),
    AdminError
);
worker_api::named_result!(
    /// The canister's settings (controllers).
    ConfigResult,
    Config,
    AdminError
);
worker_api::named_result!(
    /// One worker (controllers).
    WorkerResult,
    WorkerInfo,
    AdminError
);
worker_api::named_result!(
    /// One job (its owner).
    JobResult,
    JobInfo,
    UserError
);
worker_api::named_result!(
    /// The caller's own profile.
    ProfileResult,
    UserProfile,
    UserError
);
worker_api::named_result!(
    /// The bytes of a model's file (a chunk, the manifest).
    BytesResult,
    ByteBuf,
    UserError
);
