//! Refuses ingress that would be refused anyway, before it costs cycles:
//! admin methods from non-controllers, user methods from the anonymous
//! principal, unregistered or banned callers, and any argument larger than
//! its method can take (the IC accepts 2 MiB for every method, and the
//! canister pays for what it accepts).

use ic_cdk::inspect_message;

use model_format::limits::{MAX_STOP_SEQUENCES, MAX_STOP_SEQUENCE_BYTES};
use model_format::MAX_CHUNK_SIZE;

use crate::env::{CanisterEnv, Environment};
use crate::model::jobs::{MAX_CHAT_MESSAGES, MAX_PROMPT_BYTES};
use crate::model::spawn::MAX_PIECE;
use crate::model::users::{authorized_user, registration};
use crate::state::{read_state, State};

#[inspect_message]
fn inspect_message() {
    let method = ic_cdk::api::msg_method_name();
    let arg_bytes = ic0::msg_arg_data_size() as u64;
    if read_state(|state| accepts(state, &CanisterEnv, &method, arg_bytes)) {
        ic_cdk::api::accept_message();
    }
}

/// Who may send each update method as ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Controllers,
    /// Anyone but the anonymous principal and banned users.
    Registering,
    /// Registered users who are not banned.
    Users,
}

fn audience(method: &str) -> Option<Audience> {
    Some(match method {
        "set_default_quota" | "set_user_quota" | "ban_user" | "unban_user" | "set_paused"
        | "set_config" | "approve_users" | "create_model" | "upload_chunk" | "delete_model"
        | "add_worker" | "remove_worker" | "deploy_model" | "undeploy_model"
        | "upload_worker_wasm" | "spawn_workers" => Audience::Controllers,
        "register" => Audience::Registering,
        "generate" | "generate_and_wait" | "cancel" | "job" | "my_jobs" => Audience::Users,
        // Queries sent as updates: served to the same callers.
        "whoami" => Audience::Users,
        "user" | "missing_chunks" | "workers" | "config" | "pending_users" => Audience::Controllers,
        // Public queries; as updates (certified answers) for users.
        "models" | "model_manifest" | "model_chunk" | "pipelines" => Audience::Users,
        // Workers' reports and the canister's own round trips are calls
        // from canisters, never ingress.
        _ => return None,
    })
}

/// Candid framing around the bytes a method's limits count: the header and
/// type table, field tags, length prefixes and the small fields.
pub(crate) const FRAMING_BYTES: u64 = 2 * 1024;

/// The IC's ingress limit: what a method without a tighter cap may take.
const INGRESS_BYTES: u64 = 2 * 1024 * 1024;

/// The largest `generate` argument a valid request can have: the prompt's
/// bytes (chat roles included), two LEB128 length prefixes of at most 3
/// bytes per chat message, the stop sequences with theirs (2 bytes), and
/// the framing (model name, sampling, seed).
pub(crate) const GENERATE_ARG_BYTES: u64 = MAX_PROMPT_BYTES
    + 6 * MAX_CHAT_MESSAGES as u64
    + (MAX_STOP_SEQUENCE_BYTES as u64 + 2) * MAX_STOP_SEQUENCES as u64
    + FRAMING_BYTES;

// About 70 KiB: the prompt limit and little more.
const _: () = assert!(GENERATE_ARG_BYTES < 72 * 1024);

/// The largest candid argument each method takes as ingress, in bytes.
pub(crate) fn max_arg_bytes(method: &str) -> u64 {
    match method {
        "generate" | "generate_and_wait" => GENERATE_ARG_BYTES,
        "upload_chunk" => MAX_CHUNK_SIZE + FRAMING_BYTES,
        "approve_users" => crate::guards::APPROVALS_ARG_BYTES,
        "upload_worker_wasm" => MAX_PIECE as u64 + FRAMING_BYTES,
        // A manifest lists every chunk's hash: it grows with the model.
        "create_model" => INGRESS_BYTES,
        // Everything else takes a name, an id, a principal or nothing.
        _ => FRAMING_BYTES,
    }
}

pub(crate) fn accepts(state: &State, env: &impl Environment, method: &str, arg_bytes: u64) -> bool {
    if arg_bytes > max_arg_bytes(method) {
        return false;
    }
    let caller = env.caller();
    if env.is_controller(&caller) {
        return audience(method).is_some();
    }
    match audience(method) {
        None | Some(Audience::Controllers) => false,
        // What `register` would refuse anyway.
        Some(Audience::Registering) => registration(state, caller).is_ok(),
        Some(Audience::Users) => authorized_user(state, caller).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::test::{controller, user, TestEnv};
    use crate::updates::ban_user::set_banned;
    use crate::updates::register::register_impl;
    use candid::Principal;

    #[test]
    fn refuses_what_the_method_would_refuse() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        let anonymous = Principal::anonymous();

        assert!(!accepts(&state, env.as_caller(anonymous), "register", 0));
        assert!(accepts(&state, env.as_caller(user(1)), "register", 0));
        assert!(!accepts(&state, &env, "whoami", 0), "unregistered");
        register_impl(&mut state, &env).unwrap();
        assert!(accepts(&state, &env, "whoami", 0));
        assert!(!accepts(&state, &env, "set_paused", 0));
        assert!(!accepts(&state, &env, "no_such_method", 0));

        env.as_caller(controller());
        assert!(accepts(&state, &env, "set_paused", 0));
        assert!(!accepts(&state, &env, "no_such_method", 0));
        set_banned(&mut state, &env, user(1), true).unwrap();
        env.as_caller(user(1));
        assert!(!accepts(&state, &env, "register", 0));
        assert!(!accepts(&state, &env, "whoami", 0));
    }

    /// The largest `generate` a valid request can make: 256 chat messages
    /// holding 64 KiB, 16 stop sequences of 256 bytes, every option set.
    fn largest_generate() -> Vec<u8> {
        use crate::model::registry::MAX_NAME_LEN;
        use task_manager_api::{ChatMessage, GenerateRequest, Prompt, Sampling};
        let per_message = MAX_PROMPT_BYTES as usize / MAX_CHAT_MESSAGES;
        let role = task_manager_api::Role::Assistant;
        let messages = (0..MAX_CHAT_MESSAGES)
            .map(|_| ChatMessage {
                role,
                content: "x".repeat(per_message - role.as_str().len()),
            })
            .collect();
        let request = GenerateRequest {
            model: "m".repeat(MAX_NAME_LEN),
            prompt: Prompt::Chat(messages),
            max_new_tokens: u32::MAX,
            sampling: Sampling {
                temperature: Some(0.7),
                top_k: Some(u32::MAX),
                top_p: Some(0.9),
                repetition_penalty: Some(1.1),
            },
            stop_sequences: vec!["s".repeat(MAX_STOP_SEQUENCE_BYTES); MAX_STOP_SEQUENCES],
            seed: Some(serde_bytes::ByteBuf::from(vec![7; 32])),
        };
        candid::encode_one(&request).unwrap()
    }

    #[test]
    fn the_largest_valid_arguments_fit_their_caps() {
        let generate = largest_generate();
        assert!(
            generate.len() as u64 <= GENERATE_ARG_BYTES,
            "{} > {GENERATE_ARG_BYTES}",
            generate.len()
        );
        assert!(
            generate.len() as u64 > MAX_PROMPT_BYTES,
            "{}",
            generate.len()
        );

        use task_manager_api::upload_chunk::UploadChunkArgs;
        use task_manager_api::upload_worker_wasm::UploadWorkerWasmArgs;
        use task_manager_api::{ChunkRef, ModelFile};
        let chunk = candid::encode_one(UploadChunkArgs {
            chunk: ChunkRef {
                model: "m".repeat(crate::model::registry::MAX_NAME_LEN),
                file: ModelFile::Stage(u32::MAX),
                index: u32::MAX,
            },
            bytes: serde_bytes::ByteBuf::from(vec![0; MAX_CHUNK_SIZE as usize]),
        })
        .unwrap();
        assert!(chunk.len() as u64 <= max_arg_bytes("upload_chunk"));
        let piece = candid::encode_one(UploadWorkerWasmArgs {
            offset: u64::MAX,
            bytes: serde_bytes::ByteBuf::from(vec![0; MAX_PIECE]),
        })
        .unwrap();
        assert!(piece.len() as u64 <= max_arg_bytes("upload_worker_wasm"));
        // The methods without a cap of their own take a handful of bytes.
        let small = candid::encode_args((
            Principal::management_canister(),
            "m".repeat(crate::model::registry::MAX_NAME_LEN),
            u64::MAX,
        ))
        .unwrap();
        assert!(small.len() as u64 <= max_arg_bytes("set_user_quota"));
    }

    #[test]
    fn an_argument_over_its_methods_cap_is_refused_whoever_sends_it() {
        let mut state = State::in_memory();
        let mut env = TestEnv::new();
        env.as_caller(user(1));
        let small = max_arg_bytes("register");
        assert!(accepts(&state, &env, "register", small));
        assert!(!accepts(&state, &env, "register", small + 1));
        assert!(!accepts(&state, &env, "register", INGRESS_BYTES));
        register_impl(&mut state, &env).unwrap();
        assert!(accepts(&state, &env, "generate", GENERATE_ARG_BYTES));
        assert!(!accepts(&state, &env, "generate", GENERATE_ARG_BYTES + 1));
        assert!(!accepts(&state, &env, "generate_and_wait", INGRESS_BYTES));
        assert!(!accepts(&state, &env, "cancel", 64 * 1024));
        // Controllers too: the canister pays for their messages as well.
        env.as_caller(controller());
        let chunk = max_arg_bytes("upload_chunk");
        assert!(accepts(&state, &env, "upload_chunk", chunk));
        assert!(!accepts(&state, &env, "upload_chunk", chunk + 1));
        assert!(accepts(&state, &env, "create_model", INGRESS_BYTES));
        assert!(!accepts(&state, &env, "set_paused", small + 1));
    }
}
