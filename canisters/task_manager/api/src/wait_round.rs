//! `wait_round` (update; the task manager itself): one round trip of a
//! waiting `generate_and_wait`. The IC answers a call only from its own
//! call context, so each waiter keeps one bounded-wait self-call in flight
//! and reads its job's end (recorded by `job_finished`) when it returns.
//! From anyone else it does nothing.

pub type Response = ();
