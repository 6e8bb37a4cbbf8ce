//! Cycles as an application subnet charges them.
//!
//! The fees are the IC's (`dfinity/ic` `rs/config/src/subnet_config.rs` at
//! 002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe,
//! `CyclesAccountManagerConfig::application_subnet`), scaled to the
//! subnet's size as the IC scales them (every fee is set for 13 nodes and
//! multiplied by `nodes / 13`). How they are charged follows
//! `rs/cycles_account_manager/src/lib.rs`
//! (001034438c5befe089999e59fa8bb30f77f04770):
//!
//! - an update, callback, timer or heartbeat prepays the execution of its
//!   whole instruction limit ([`FeeSchedule::execution_cost`]); what it did
//!   not use is refunded after it ran; queries are free;
//! - an ingress message costs its receiver 1.2 M plus 2,000 per byte of
//!   argument and method name;
//! - a call costs its caller 260 K plus 1,000 per byte of argument and
//!   method name, and prepays the execution of its callback and the
//!   transmission of the largest response (2 MiB); the unused part comes
//!   back with the response;
//! - creating a canister costs 500 billion, taken from the cycles sent
//!   with `create_canister`; installing code prepays the install's
//!   instruction limit and pays the compilation of the module;
//! - memory costs 127,000 cycles per GiB per second, charged as time
//!   passes.
//!
//! A canister must keep its *freezing threshold*: the cycles its memory
//! costs over `freezing_threshold` seconds (30 days by default). A charge
//! that would take the balance below it fails: ingress and calls to the
//! canister are refused, `call_perform` returns an error, growing memory
//! traps; a storage charge that cannot be paid empties the balance and
//! uninstalls the canister's code, as the IC does.

/// One GiB, the unit of the storage fee.
const GIB: u128 = 1 << 30;

/// The fees of a subnet, per node count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeSchedule {
    /// Nodes of the subnet; fees are set for 13 and scale linearly.
    pub nodes: u64,
    /// Creating a canister (taken from the cycles sent with the request).
    pub canister_creation: u128,
    /// Every update-like execution (update, callback, timer, heartbeat,
    /// install).
    pub update_message_execution: u128,
    /// Every 10 instructions of an update-like execution.
    pub ten_update_instructions_execution: u128,
    /// Every inter-canister call (request and response).
    pub xnet_call: u128,
    /// Every byte of an inter-canister request or response.
    pub xnet_byte_transmission: u128,
    /// Every ingress message received.
    pub ingress_message_reception: u128,
    /// Every byte of an ingress message received.
    pub ingress_byte_reception: u128,
    /// Storing one GiB for one second.
    pub gib_storage_per_second: u128,
}

/// The reference size every fee is set for.
const REFERENCE_SUBNET_SIZE: u128 = 13;

impl FeeSchedule {
    /// An application subnet of `nodes` nodes (the IC's application subnets
    /// have 13, which makes every fee its reference value).
    pub fn application_subnet(nodes: u64) -> FeeSchedule {
        FeeSchedule {
            nodes,
            canister_creation: 500_000_000_000,
            update_message_execution: 5_000_000,
            ten_update_instructions_execution: 10,
            xnet_call: 260_000,
            xnet_byte_transmission: 1_000,
            ingress_message_reception: 1_200_000,
            ingress_byte_reception: 2_000,
            gib_storage_per_second: 127_000,
        }
    }

    /// No fees at all (as on a system subnet).
    pub fn free() -> FeeSchedule {
        FeeSchedule {
            nodes: 13,
            canister_creation: 0,
            update_message_execution: 0,
            ten_update_instructions_execution: 0,
            xnet_call: 0,
            xnet_byte_transmission: 0,
            ingress_message_reception: 0,
            ingress_byte_reception: 0,
            gib_storage_per_second: 0,
        }
    }

    /// Whether anything is charged at all.
    pub fn charges(&self) -> bool {
        *self != FeeSchedule::free()
    }

    fn scale(&self, cycles: u128) -> u128 {
        cycles.saturating_mul(u128::from(self.nodes)) / REFERENCE_SUBNET_SIZE
    }

    /// What executing `instructions` in one update-like message costs.
    pub fn execution_cost(&self, instructions: u64) -> u128 {
        self.scale(
            self.update_message_execution.saturating_add(
                self.ten_update_instructions_execution
                    .saturating_mul(u128::from(instructions / 10)),
            ),
        )
    }

    /// What the unused `instructions` of a prepaid execution give back.
    pub fn execution_refund(&self, instructions: u64) -> u128 {
        self.scale(
            self.ten_update_instructions_execution
                .saturating_mul(u128::from(instructions / 10)),
        )
    }

    /// What an ingress message of `bytes` (argument and method name) costs
    /// its receiver.
    pub fn ingress_induction_cost(&self, bytes: u64) -> u128 {
        self.scale(
            self.ingress_message_reception.saturating_add(
                self.ingress_byte_reception
                    .saturating_mul(u128::from(bytes)),
            ),
        )
    }

    /// What an inter-canister request of `bytes` (argument and method name)
    /// costs its caller.
    pub fn xnet_call_cost(&self, bytes: u64) -> u128 {
        self.scale(
            self.xnet_call.saturating_add(
                self.xnet_byte_transmission
                    .saturating_mul(u128::from(bytes)),
            ),
        )
    }

    /// Transmission of `bytes` of a response (prepaid for the largest, the
    /// rest refunded).
    pub fn xnet_bytes_cost(&self, bytes: u64) -> u128 {
        self.scale(
            self.xnet_byte_transmission
                .saturating_mul(u128::from(bytes)),
        )
    }

    /// Storing `bytes` for `nanos` nanoseconds.
    pub fn storage_cost(&self, bytes: u64, nanos: u64) -> u128 {
        let byte_nanos = u128::from(bytes).saturating_mul(u128::from(nanos));
        self.scale(byte_nanos.saturating_mul(self.gib_storage_per_second) / GIB / 1_000_000_000)
    }

    /// The freezing threshold of a canister using `memory` bytes with a
    /// threshold of `seconds`: its storage over that time.
    pub fn freezing_threshold(&self, memory: u64, seconds: u64) -> u128 {
        self.scale(
            u128::from(memory)
                .saturating_mul(self.gib_storage_per_second)
                .saturating_mul(u128::from(seconds))
                / GIB,
        )
    }

    /// The creation fee of a canister.
    pub fn creation_fee(&self) -> u128 {
        self.scale(self.canister_creation)
    }

    /// What one day of storing `memory` bytes costs (`canister_status`'s
    /// `idle_cycles_burned_per_day`).
    pub fn idle_cycles_per_day(&self, memory: u64) -> u128 {
        self.freezing_threshold(memory, 24 * 3600)
    }
}

impl Default for FeeSchedule {
    fn default() -> FeeSchedule {
        FeeSchedule::application_subnet(13)
    }
}

/// What a running message needs to decide whether it may spend cycles:
/// the fees, the canister's memory and its freezing threshold setting.
#[derive(Debug, Clone)]
pub(crate) struct CyclesContext {
    pub fees: std::sync::Arc<FeeSchedule>,
    /// The canister's memory usage (heap, stable memory, module, chunks),
    /// updated as the message grows memory.
    pub memory: u64,
    pub freezing_threshold_secs: u64,
    /// What this execution prepaid for its instructions (refunded in part
    /// after it ran).
    pub prepaid: u128,
    /// Execution prepaid for callbacks, per call, and the largest response
    /// whose transmission a call prepays.
    pub callback_prepay: u128,
    pub max_response_bytes: u64,
}

impl CyclesContext {
    /// The balance the canister must keep.
    pub fn threshold(&self) -> u128 {
        self.fees
            .freezing_threshold(self.memory, self.freezing_threshold_secs)
    }

    /// The cycles that `balance` lacks to cover `cost` and the freezing
    /// threshold, if any.
    pub fn shortfall(&self, balance: u128, cost: u128) -> Option<u128> {
        let needed = self.threshold().saturating_add(cost);
        (balance < needed).then(|| needed - balance)
    }

    /// Grows memory by `bytes` if `balance` still covers the freezing
    /// threshold of the larger memory; the IC's error message otherwise.
    pub fn grow(&mut self, balance: u128, bytes: u64) -> Result<(), String> {
        let memory = self.memory.saturating_add(bytes);
        let threshold = self
            .fees
            .freezing_threshold(memory, self.freezing_threshold_secs);
        if balance < threshold {
            return Err(format!(
                "Canister cannot grow memory by {bytes} bytes due to insufficient cycles. At least {} \
                 additional cycles are required.",
                threshold - balance
            ));
        }
        self.memory = memory;
        Ok(())
    }
}

/// The IC's error for a charge a canister cannot pay.
pub(crate) fn out_of_cycles_message(canister: candid::Principal, missing: u128) -> String {
    format!(
        "Canister {canister} is out of cycles: please top up the canister with at least {missing} \
         additional cycles"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_are_the_application_subnets() {
        let f = FeeSchedule::default();
        // 40 billion instructions prepaid: 5 M + 40 B cycles.
        assert_eq!(f.execution_cost(40_000_000_000), 40_005_000_000);
        assert_eq!(f.execution_refund(1_000), 1_000);
        assert_eq!(f.ingress_induction_cost(100), 1_200_000 + 200_000);
        assert_eq!(f.xnet_call_cost(10), 270_000);
        assert_eq!(f.creation_fee(), 500_000_000_000);
        // 1 GiB for one second, and a 30-day threshold for 1 GiB.
        assert_eq!(f.storage_cost(1 << 30, 1_000_000_000), 127_000);
        assert_eq!(
            f.freezing_threshold(1 << 30, 2_592_000),
            127_000 * 2_592_000
        );
    }

    #[test]
    fn fees_scale_with_the_subnet() {
        let big = FeeSchedule::application_subnet(34);
        assert_eq!(big.creation_fee(), 500_000_000_000 * 34 / 13);
        assert!(!FeeSchedule::free().charges());
        assert_eq!(FeeSchedule::free().execution_cost(1_000_000), 0);
    }

    #[test]
    fn memory_growth_keeps_the_freezing_threshold() {
        let mut ctx = CyclesContext {
            fees: std::sync::Arc::new(FeeSchedule::default()),
            memory: 0,
            freezing_threshold_secs: 2_592_000,
            prepaid: 0,
            callback_prepay: 0,
            max_response_bytes: 0,
        };
        let one_gib_threshold = 127_000u128 * 2_592_000;
        assert!(ctx.grow(one_gib_threshold, 1 << 30).is_ok());
        let err = ctx.grow(one_gib_threshold, 1 << 30).unwrap_err();
        assert!(err.contains("insufficient cycles"), "{err}");
        assert_eq!(ctx.memory, 1 << 30);
        assert_eq!(ctx.shortfall(one_gib_threshold, 10), Some(10));
        assert_eq!(ctx.shortfall(one_gib_threshold + 10, 10), None);
    }
}
