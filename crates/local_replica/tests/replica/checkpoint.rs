//! Checkpoints: the replica's state written to a directory and restored,
//! in-flight calls included; incremental writes; interrupted writes; the
//! typed errors of a directory that holds no usable checkpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use candid::{Nat, Principal};
use local_replica::management::{CanisterSettings, EnvironmentVariable};
use local_replica::{CheckpointError, Config, Error, ExecutionRecord, FeeSchedule, LocalReplica};

use crate::common::*;

/// A directory under the system's temporary directory, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "local_replica_checkpoint_{name}_{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files(from) {
        let target = to.join(&f);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), target).unwrap();
    }
}

fn manifests(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "bin"))
        .collect()
}

fn restore(dir: &Path) -> LocalReplica {
    LocalReplica::restore(dir, Config::default()).unwrap_or_else(|e| panic!("restore: {e}"))
}

/// Deterministic bytes that differ from page to page.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// What a test can see of a canister without running anything.
#[derive(Debug, PartialEq)]
struct Seen {
    exists: bool,
    cycles: Option<u128>,
    controllers: Option<Vec<Principal>>,
    version: Option<u64>,
    module_hash: Option<[u8; 32]>,
    certified_data: Option<Vec<u8>>,
    stable: Option<Vec<u8>>,
    heap: Option<usize>,
    timer: Option<u64>,
}

fn seen(ic: &LocalReplica, id: Principal) -> Seen {
    Seen {
        exists: ic.canister_exists(id),
        cycles: ic.cycle_balance(id),
        controllers: ic.controllers(id),
        version: ic.canister_version(id),
        module_hash: ic.module_hash(id),
        certified_data: ic.certified_data(id),
        stable: ic.stable_memory(id).map(<[u8]>::to_vec),
        heap: ic.heap_size(id),
        timer: ic.global_timer(id),
    }
}

/// An execution without its wall time.
fn execution(r: &ExecutionRecord) -> String {
    format!(
        "{} {} {:?} {} {} {} {:?}",
        r.round, r.canister, r.kind, r.method, r.instructions, r.cycles, r.trap
    )
}

#[test]
fn canisters_and_their_state_survive_a_restore() {
    let dir = TempDir::new("round_trip");
    let mut ic = replica();
    let counter = counter(&mut ic);
    for _ in 0..3 {
        ic.update_one::<_, u64>(counter, user(), "inc", &())
            .unwrap();
    }
    ic.update::<_, ()>(counter, user(), "set_certified", (vec![1u8, 2, 3],))
        .unwrap();
    ic.update_one::<_, i64>(counter, user(), "stable_grow", &2u64)
        .unwrap();
    ic.update::<_, ()>(counter, user(), "stable_write", (100u64, b"hello".to_vec()))
        .unwrap();
    ic.update_settings(
        user(),
        counter,
        CanisterSettings {
            controllers: Some(vec![user(), other_user()]),
            freezing_threshold: Some(Nat::from(1234u32)),
            wasm_memory_limit: Some(Nat::from(1u64 << 30)),
            environment_variables: Some(vec![EnvironmentVariable {
                name: "MODE".into(),
                value: "test".into(),
            }]),
            ..CanisterSettings::default()
        },
    )
    .unwrap();
    let stable = install(&mut ic, "tc_stable", no_arg());
    ic.update::<_, (Option<String>,)>(stable, user(), "put", (1u64, "one".to_string()))
        .unwrap();
    ic.update::<_, (Option<String>,)>(stable, user(), "put", (2u64, "two".to_string()))
        .unwrap();
    let timers = install(&mut ic, "tc_timers", no_arg());
    ic.update::<_, ()>(timers, user(), "once_after", (10u64,))
        .unwrap();
    ic.update::<_, ()>(timers, user(), "every", (4u64,))
        .unwrap();
    ic.advance_time(Duration::from_secs(5));
    ic.tick();
    ic.run_until_idle().unwrap();
    // An empty canister with chunks in its chunk store, stopped.
    let empty = ic.create_canister(user()).unwrap();
    let chunk_hash = ic.upload_chunk(user(), empty, vec![7u8; 3000]).unwrap();
    ic.stop_canister(user(), empty).unwrap();

    let fired_before: (u64, u64, u64) = ic.query(timers, user(), "fired", ()).unwrap();
    assert_eq!(fired_before.0, 0, "the one-shot timer is not due yet");
    assert!(
        fired_before.1 >= 1,
        "the periodic timer ran: {fired_before:?}"
    );

    let stats = ic.checkpoint(dir.path()).unwrap();
    assert_eq!(stats.seq, 1);
    assert_eq!(stats.canisters, 4);
    assert!(
        stats.pages_written > 0 && stats.bytes_written > 0,
        "{stats:?}"
    );
    let mut back = restore(dir.path());

    assert_eq!(back.time(), ic.time());
    assert_eq!(back.round(), ic.round());
    assert_eq!(back.root_key(), ic.root_key());
    for id in [counter, stable, timers, empty] {
        assert_eq!(seen(&back, id), seen(&ic, id), "canister {id}");
    }
    assert_eq!(
        back.stable_memory(counter).unwrap()[100..105],
        *b"hello".as_slice()
    );
    assert!(back.executions().is_empty(), "records are not restored");

    // Both replicas go on the same way.
    for r in [&mut ic, &mut back] {
        assert_eq!(
            r.query_one::<_, u64>(counter, user(), "get", &()).unwrap(),
            3
        );
        assert_eq!(
            r.update_one::<_, u64>(counter, user(), "inc", &()).unwrap(),
            4
        );
        let one: (Option<String>,) = r.query(stable, user(), "get", (1u64,)).unwrap();
        assert_eq!(one.0.as_deref(), Some("one"));
        assert_eq!(
            r.query_one::<_, u64>(stable, user(), "len", &()).unwrap(),
            2
        );
        // The module was kept: an upgrade runs pre_upgrade and post_upgrade.
        r.upgrade_canister(
            user(),
            stable,
            wasm("tc_stable"),
            candid::encode_one(false).unwrap(),
        )
        .unwrap();
        let counters: (u64, u64, u64) = r.query(stable, user(), "counters", ()).unwrap();
        assert_eq!(counters, (2, 0, 1));
        // Timers: the one-shot fires when due, the periodic one goes on.
        r.advance_time(Duration::from_secs(6));
        r.tick();
        r.run_until_idle().unwrap();
    }
    let fired_ic: (u64, u64, u64) = ic.query(timers, user(), "fired", ()).unwrap();
    let fired_back: (u64, u64, u64) = back.query(timers, user(), "fired", ()).unwrap();
    assert_eq!(fired_back, fired_ic);
    assert_eq!(
        fired_back.0, 1,
        "the one-shot timer fired after the restore"
    );
    assert!(fired_back.1 > fired_before.1, "{fired_back:?}");
    // Settings, status, cycles and the chunk store, as management sees them.
    for id in [counter, stable, timers, empty] {
        assert_eq!(
            back.canister_status(user(), id).unwrap(),
            ic.canister_status(user(), id).unwrap(),
            "canister {id}"
        );
        assert_eq!(seen(&back, id), seen(&ic, id), "canister {id}");
    }
    let env: Vec<u8> = back
        .update_call(counter, other_user(), "env_update", no_arg())
        .unwrap();
    assert_eq!(
        env,
        ic.update_call(counter, other_user(), "env_update", no_arg())
            .unwrap()
    );
    let stored: Vec<local_replica::management::ChunkHash> = back
        .update_one(
            Principal::management_canister(),
            user(),
            "stored_chunks",
            &local_replica::management::CanisterIdRecord { canister_id: empty },
        )
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].hash, chunk_hash);
    back.start_canister(user(), empty).unwrap();
}

#[test]
fn calls_in_flight_finish_after_a_restore_as_if_nothing_happened() {
    let dir = TempDir::new("in_flight");
    // Fees on, so that cycles are part of what must match.
    let mut ic = replica_with(Config {
        fees: FeeSchedule::default(),
        ..Config::default()
    });
    let counter = counter(&mut ic);
    let caller = install(&mut ic, "tc_caller", no_arg());
    let ids = [
        ic.submit_update(
            caller,
            user(),
            "self_chain",
            candid::encode_one(12u64).unwrap(),
        )
        .unwrap(),
        ic.submit_update(
            caller,
            user(),
            "inc_remote",
            candid::encode_args((counter, 4u64)).unwrap(),
        )
        .unwrap(),
        ic.submit_update(
            caller,
            user(),
            "fan_out",
            candid::encode_args((counter, 3u64)).unwrap(),
        )
        .unwrap(),
        ic.submit_update(caller, user(), "rand", no_arg()).unwrap(),
    ];
    ic.advance_time(Duration::from_secs(1));
    for _ in 0..4 {
        ic.tick();
    }
    assert!(ic.pending_messages() > 0, "calls are in flight");
    assert!(
        ic.ingress_result(ids[0]).is_none(),
        "the self-call chain is not finished"
    );
    ic.checkpoint(dir.path()).unwrap();
    let mut back = restore(dir.path());
    assert_eq!(back.pending_messages(), ic.pending_messages());
    let done = ic.executions().len();

    let mut results = Vec::new();
    for r in [&mut ic, &mut back] {
        let replies: Vec<Vec<u8>> = ids.iter().map(|id| r.await_ingress(*id).unwrap()).collect();
        let self_calls: u64 = r.query_one(caller, user(), "self_calls", &()).unwrap();
        let count: u64 = r.query_one(counter, user(), "get", &()).unwrap();
        results.push((
            replies,
            self_calls,
            count,
            r.time(),
            r.round(),
            seen(r, caller),
            seen(r, counter),
        ));
    }
    assert_eq!(results[1], results[0]);
    let (replies, self_calls, count, ..) = &results[0];
    assert_eq!(candid::decode_one::<u64>(&replies[0]).unwrap(), 13);
    assert_eq!(*self_calls, 13);
    assert_eq!(*count, 7, "4 sequential and 3 fanned-out increments");
    assert_eq!(
        candid::decode_one::<Vec<u8>>(&replies[3]).unwrap().len(),
        32
    );
    // The same executions, with the same instructions and cycles.
    let after: Vec<String> = ic.executions()[done..].iter().map(execution).collect();
    let restored: Vec<String> = back.executions().iter().map(execution).collect();
    assert!(!after.is_empty());
    assert_eq!(restored, after);
    // And the same random bytes afterwards (seed and counter restored).
    let a: Vec<u8> = ic.update_one(caller, user(), "rand", &()).unwrap();
    let b: Vec<u8> = back.update_one(caller, user(), "rand", &()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_second_checkpoint_writes_only_what_changed() {
    let dir = TempDir::new("incremental");
    let other = TempDir::new("incremental_other");
    let mut ic = replica();
    let counter = counter(&mut ic);
    const MIB: usize = 1 << 20;
    ic.update_one::<_, i64>(counter, user(), "stable_grow", &64u64)
        .unwrap();
    let data: Vec<Vec<u8>> = (0..4).map(|i| pattern(MIB, i)).collect();
    for (i, d) in data.iter().enumerate() {
        ic.update::<_, ()>(
            counter,
            user(),
            "stable_write",
            ((i * MIB) as u64, d.clone()),
        )
        .unwrap();
    }
    let first = ic.checkpoint(dir.path()).unwrap();
    assert!(first.pages_written >= 64, "{first:?}");
    assert!(first.bytes_written >= 4 * MIB as u64, "{first:?}");

    // One increment: a few heap pages change.
    ic.update_one::<_, u64>(counter, user(), "inc", &())
        .unwrap();
    let second = ic.checkpoint(dir.path()).unwrap();
    assert_eq!(second.seq, 2);
    assert!(second.pages_written <= 4, "{second:?}");
    assert!(
        second.pages_hashed <= 4,
        "only changed pages are hashed: {second:?}"
    );
    assert!(second.pages_unchanged >= 64, "{second:?}");
    assert!(
        second.bytes_written * 20 < first.bytes_written,
        "first {first:?}, second {second:?}"
    );
    // Nothing changed: only the manifest.
    let third = ic.checkpoint(dir.path()).unwrap();
    assert_eq!(
        (third.pages_hashed, third.pages_written, third.blobs_written),
        (0, 0, 0),
        "{third:?}"
    );
    assert_eq!(
        manifests(dir.path()).len(),
        1,
        "older manifests are deleted"
    );

    // A write of one stable page: one page (and the tables) written.
    ic.update::<_, ()>(
        counter,
        user(),
        "stable_write",
        (3 * MIB as u64, vec![0xeeu8; 10]),
    )
    .unwrap();
    let fourth = ic.checkpoint(dir.path()).unwrap();
    assert!((1..=5).contains(&fourth.pages_written), "{fourth:?}");

    let mut back = restore(dir.path());
    assert_eq!(
        back.query_one::<_, u64>(counter, user(), "get", &())
            .unwrap(),
        1
    );
    let stable = back.stable_memory(counter).unwrap();
    assert_eq!(stable.len(), 64 << 16);
    assert_eq!(stable[..3 * MIB], data[..3].concat());
    assert_eq!(stable[3 * MIB..3 * MIB + 10], [0xee; 10]);
    assert_eq!(stable[3 * MIB + 10..4 * MIB], data[3][10..]);
    // The restored replica goes on incrementally in the same directory...
    back.update_one::<_, u64>(counter, user(), "inc", &())
        .unwrap();
    let fifth = back.checkpoint(dir.path()).unwrap();
    assert_eq!(fifth.seq, 5);
    assert!(fifth.pages_written <= 4, "{fifth:?}");
    assert!(fifth.pages_hashed <= 4, "{fifth:?}");
    // ...and a new directory gets everything.
    let elsewhere = back.checkpoint(other.path()).unwrap();
    assert_eq!(elsewhere.seq, 1);
    assert!(elsewhere.pages_written >= 64, "{elsewhere:?}");
    // Pages no checkpoint names any more are deleted: after all of stable
    // memory changed, the directory holds one copy of it, not two.
    for (i, _) in data.iter().enumerate() {
        back.update::<_, ()>(
            counter,
            user(),
            "stable_write",
            ((i * MIB) as u64, pattern(MIB, 10 + i as u64)),
        )
        .unwrap();
    }
    let rewritten = back.checkpoint(dir.path()).unwrap();
    assert!(rewritten.pages_written >= 64, "{rewritten:?}");
    assert!(rewritten.files_removed >= 64, "{rewritten:?}");
    let size: u64 = files(dir.path())
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    assert!(
        size < first.bytes_written + first.bytes_written / 2,
        "{size} bytes on disk after checkpoints of {} bytes",
        first.bytes_written
    );
    assert_eq!(
        restore(dir.path()).stable_memory(counter).unwrap()[..MIB],
        pattern(MIB, 10)
    );
}

#[test]
fn an_interrupted_checkpoint_leaves_the_previous_one_whole() {
    let dir = TempDir::new("interrupted");
    let next = TempDir::new("interrupted_next");
    let mut ic = replica();
    let counter = counter(&mut ic);
    ic.update_one::<_, u64>(counter, user(), "inc", &())
        .unwrap();
    ic.update_one::<_, i64>(counter, user(), "stable_grow", &4u64)
        .unwrap();
    ic.update::<_, ()>(counter, user(), "stable_write", (0u64, pattern(200_000, 1)))
        .unwrap();
    ic.checkpoint(dir.path()).unwrap();

    // The next checkpoint, written completely elsewhere: what an
    // interrupted write to `dir` would have left there is a part of it.
    ic.update_one::<_, u64>(counter, user(), "inc", &())
        .unwrap();
    ic.update::<_, ()>(counter, user(), "stable_write", (0u64, pattern(200_000, 2)))
        .unwrap();
    copy_dir(dir.path(), next.path());
    let stats = ic.checkpoint(next.path()).unwrap();
    assert_eq!(stats.seq, 2);
    let old: Vec<PathBuf> = files(dir.path());
    let new_blobs: Vec<PathBuf> = files(next.path())
        .into_iter()
        .filter(|f| f.starts_with("blobs") && !old.contains(f))
        .collect();
    assert!(new_blobs.len() >= 2, "{new_blobs:?}");
    // Blobs renamed into place, one still being written, and the manifest
    // written but not yet renamed.
    for (i, f) in new_blobs.iter().enumerate() {
        let bytes = std::fs::read(next.path().join(f)).unwrap();
        let target = dir.path().join(f);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        if i == 0 {
            let mut name = target.into_os_string();
            name.push(".tmp");
            std::fs::write(name, &bytes[..bytes.len() / 2]).unwrap();
        } else {
            std::fs::write(target, bytes).unwrap();
        }
    }
    let manifest = manifests(next.path()).pop().unwrap();
    let mut tmp = dir.path().join(&manifest).into_os_string();
    tmp.push(".tmp");
    std::fs::copy(next.path().join(&manifest), &tmp).unwrap();

    let mut back = restore(dir.path());
    assert_eq!(
        back.query_one::<_, u64>(counter, user(), "get", &())
            .unwrap(),
        1,
        "the previous checkpoint"
    );
    assert_eq!(
        back.stable_memory(counter).unwrap()[..200_000],
        pattern(200_000, 1)
    );

    // The next checkpoint there clears the leftovers (and writes only the
    // pages that are not there).
    let stats = back.checkpoint(dir.path()).unwrap();
    assert_eq!(stats.seq, 2);
    assert!(stats.files_removed >= 2, "{stats:?}");
    assert!(!files(dir.path())
        .iter()
        .any(|f| f.extension().is_some_and(|e| e == "tmp")));
    let again = restore(dir.path());
    assert_eq!(seen(&again, counter), seen(&back, counter));

    // The newer checkpoint written elsewhere restores the newer state.
    let newer = restore(next.path());
    assert_eq!(
        newer.stable_memory(counter).unwrap()[..200_000],
        pattern(200_000, 2)
    );
}

#[test]
fn a_directory_without_a_usable_checkpoint_is_a_typed_error() {
    let dir = TempDir::new("errors");
    // Missing, then empty.
    for _ in 0..2 {
        match LocalReplica::restore(dir.path(), Config::default()) {
            Err(Error::Checkpoint(CheckpointError::NoCheckpoint { .. })) => {}
            Err(e) => panic!("expected NoCheckpoint, found {e}"),
            Ok(_) => panic!("expected NoCheckpoint, found a replica"),
        }
        std::fs::create_dir_all(dir.path()).unwrap();
    }

    let mut ic = replica();
    let counter = counter(&mut ic);
    ic.update_one::<_, u64>(counter, user(), "inc", &())
        .unwrap();
    ic.checkpoint(dir.path()).unwrap();
    let manifest = dir.path().join(manifests(dir.path()).pop().unwrap());
    let original = std::fs::read(&manifest).unwrap();

    // Another format version.
    let mut bytes = original.clone();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&manifest, &bytes).unwrap();
    match LocalReplica::restore(dir.path(), Config::default()) {
        Err(Error::Checkpoint(CheckpointError::UnsupportedVersion {
            found, supported, ..
        })) => {
            assert_eq!(found, 99);
            assert_eq!(supported, local_replica::checkpoint::FORMAT_VERSION);
        }
        Err(e) => panic!("expected UnsupportedVersion, found {e}"),
        Ok(_) => panic!("expected UnsupportedVersion, found a replica"),
    }

    // A damaged manifest.
    let mut bytes = original.clone();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&manifest, &bytes).unwrap();
    assert!(matches!(
        LocalReplica::restore(dir.path(), Config::default()),
        Err(Error::Checkpoint(CheckpointError::Corrupt { .. }))
    ));

    // A missing blob, then a damaged one.
    std::fs::write(&manifest, &original).unwrap();
    restore(dir.path());
    // The largest blob: the module (zero pages are not read).
    let blob = files(dir.path())
        .into_iter()
        .filter(|f| f.starts_with("blobs"))
        .map(|f| dir.path().join(f))
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let contents = std::fs::read(&blob).unwrap();
    std::fs::remove_file(&blob).unwrap();
    assert!(matches!(
        LocalReplica::restore(dir.path(), Config::default()),
        Err(Error::Checkpoint(CheckpointError::MissingBlob { .. }))
    ));
    let mut damaged = contents.clone();
    damaged.push(0);
    std::fs::write(&blob, damaged).unwrap();
    assert!(matches!(
        LocalReplica::restore(dir.path(), Config::default()),
        Err(Error::Checkpoint(CheckpointError::Corrupt { .. }))
    ));
}
