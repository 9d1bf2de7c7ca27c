//! `Entry`'s methods on the heap: leases, refreshes on demand, failures,
//! expiry, handshake counters. (The staple's bytes are set by hand here;
//! in the zone `EntryMut::store` puts them in the slab pool.)

use super::*;

const NOW: i64 = 1_800_000_000;

fn entry() -> Entry {
    Entry::new(StapleKey([7; 32]), 1, false, NOW)
}

/// Gives `e` a staple of `len` bytes valid until `next_update` (leaked:
/// a test's few bytes).
fn with_staple(e: &mut Entry, len: usize, next_update: i64) {
    let bytes = vec![0x30; len];
    let head = len.min(HEAD);
    e.head[..head].copy_from_slice(&bytes[..head]);
    e.der = super::chunks::leak_chain(&bytes[head..]);
    e.der_len = len as u32;
    e.next_update = Secs::of(next_update);
    e.this_update = Secs::of(next_update - 3600);
    e.source = StapleSource::Fetched;
}

#[test]
fn a_new_entry_is_due_at_once_and_has_nothing_to_serve() {
    let e = entry();
    assert_eq!(e.next_refresh(), 0);
    assert!(e.servable(NOW).is_none());
    assert!(e.staple_this_update().is_none());
    assert_eq!(e.source(), StapleSource::None);
    assert!(!e.is_dynamic());
    let v = e.view();
    assert!(!v.has_staple);
    assert_eq!((v.fetch_ok, v.fetch_failed, v.stapled, v.unstapled), (0, 0, 0, 0));
}

#[test]
fn a_lease_is_taken_only_when_due_and_free() {
    let mut e = entry();
    e.set_next_refresh(NOW + 10);
    let Err(NotYet(at)) = e.take_lease(100, NOW, NOW + 30, |_, _| true) else {
        panic!("a staple not due yet was leased");
    };
    assert_eq!(at, NOW + 10);

    e.set_next_refresh(NOW);
    assert_eq!(
        e.take_lease(100, NOW, NOW + 30, |pid, _| pid == 0).ok(),
        Some(None)
    );
    // Another worker while it is held (its holder alive): told when the
    // lease ends.
    let Err(NotYet(until)) = e.take_lease(200, NOW + 1, NOW + 31, |pid, _| pid == 0) else {
        panic!("a held lease was taken");
    };
    assert_eq!(until, NOW + 30);
    // Taken over from a dead holder: its pid is returned.
    assert_eq!(
        e.take_lease(200, NOW + 1, NOW + 31, |pid, until| pid == 100
            && until == NOW + 30)
            .ok(),
        Some(Some(100))
    );
    // The holder itself again: nobody taken over.
    assert_eq!(e.take_lease(200, NOW + 2, NOW + 32, |_, _| true).ok(), Some(None));
}

#[test]
fn a_refresh_on_demand_waits_for_a_fetch_under_way_and_the_minimum_interval() {
    let mut e = entry();
    e.set_next_refresh(NOW + 3000);
    e.take_lease(100, NOW + 3000, NOW + 3030, |_, _| true).ok();
    assert_eq!(e.request_refresh(NOW + 3001, 10), Err(RefreshSkipped::InFlight));
    e.end_fetch(NOW + 3005);
    e.set_next_refresh(NOW + 9000);
    assert_eq!(
        e.request_refresh(NOW + 3008, 10),
        Err(RefreshSkipped::Recent { ago: 3 })
    );
    assert_eq!(RefreshSkipped::Recent { ago: 3 }.reason(), "fetched 3 s ago");
    // Interval 0: always queued.
    assert_eq!(e.request_refresh(NOW + 3008, 0), Ok(()));
    assert_eq!(e.next_refresh(), NOW + 3008);
    // Past the interval: queued; a refresh never moves the next one later.
    e.set_next_refresh(NOW + 3010);
    assert_eq!(e.request_refresh(NOW + 3020, 10), Ok(()));
    assert_eq!(e.next_refresh(), NOW + 3010);
    // An expired lease is no fetch under way.
    e.take_lease(100, NOW + 3020, NOW + 3025, |_, _| true).ok();
    assert_eq!(e.request_refresh(NOW + 3026, 0), Ok(()));
}

#[test]
fn a_released_lease_is_free_and_the_next_look_is_as_told() {
    let mut e = entry();
    e.take_lease(100, NOW, NOW + 30, |_, _| true).ok();
    e.release_lease(NOW + 600);
    assert_eq!(e.next_refresh(), NOW + 600);
    assert_eq!(
        e.take_lease(200, NOW + 600, NOW + 630, |pid, _| pid == 0).ok(),
        Some(None)
    );
}

#[test]
fn a_failure_counts_keeps_the_cause_and_schedules_from_what_is_still_served() {
    let mem = super::super::tests::Heap::new(1 << 20);
    mem.lock();
    let mut entry = entry();
    let mut e = EntryMut {
        entry: &mut entry,
        mem,
    };
    let kept = e.record_failure("connection refused", NOW, |failures, kept| {
        assert_eq!((failures, kept), (1, None));
        NOW + 5
    });
    assert_eq!(kept, None);
    assert_eq!(e.next_refresh(), NOW + 5);
    assert_eq!(e.last_error(), b"connection refused");

    with_staple(&mut e, 100, NOW + 7200);
    let long = "x".repeat(LAST_ERROR_LEN + 50);
    let kept = e.record_failure(&long, NOW + 10, |failures, kept| {
        assert_eq!((failures, kept), (2, Some(NOW + 7200)));
        NOW + 60
    });
    assert_eq!(kept, Some(NOW + 7200));
    assert_eq!(e.last_error().len(), LAST_ERROR_LEN);
    let v = e.view();
    assert_eq!(
        (v.fetch_failed, v.failures, v.last_result),
        (2, 2, FetchResult::Failed)
    );
    assert_eq!(v.last_error_len, LAST_ERROR_LEN);
    // The cause takes room only while fetches fail.
    let with_error = mem.used();
    e.set_last_error("");
    assert_eq!(e.last_error(), b"");
    assert!(mem.used() < with_error);
}

#[test]
fn a_staple_is_never_served_at_or_after_its_next_update() {
    let mut e = entry();
    with_staple(&mut e, 64, NOW + 100);
    assert_eq!(e.servable(NOW + 99).map(|c| c.len()), Some(64));
    assert!(e.servable(NOW + 100).is_none());
    assert_eq!(e.der().map(|c| c.len()), Some(64), "the store still gets it");
    assert_eq!(e.staple_this_update(), Some(NOW + 100 - 3600));
    // No nextUpdate: served until replaced.
    e.next_update = Secs(0);
    assert!(e.servable(NOW + 1_000_000).is_some());
}

#[test]
fn an_expired_staple_seen_by_a_handshake_makes_it_due_once() {
    let mut e = entry();
    assert_eq!(e.expired_seen(NOW), None, "no staple: nothing expired");
    with_staple(&mut e, 64, NOW + 100);
    e.set_next_refresh(NOW + 50);
    assert_eq!(e.expired_seen(NOW + 99), None);
    e.set_next_refresh(NOW + 500);
    assert_eq!(e.expired_seen(NOW + 130), Some(30));
    assert_eq!(e.next_refresh(), NOW + 130);
    // Said once per staple: a failed fetch's backoff then holds.
    e.set_next_refresh(NOW + 400);
    assert_eq!(e.expired_seen(NOW + 140), None);
    assert_eq!(e.next_refresh(), NOW + 400);
    // A newer staple that expires in turn: said again.
    with_staple(&mut e, 64, NOW + 200);
    assert_eq!(e.expired_seen(NOW + 210), Some(10));
}

#[test]
fn handshakes_are_counted_and_keep_a_dynamic_entry_recent() {
    let mut e = entry();
    e.count_handshake(true, NOW + 5);
    e.count_handshake(false, NOW + 6);
    e.count_handshake(true, NOW + 7);
    let v = e.view();
    assert_eq!((v.stapled, v.unstapled), (2, 1));
    assert_eq!(e.last_used.get(), 0, "a configured entry has no LRU time");

    let mut d = Entry::new(StapleKey([8; 32]), 1, true, NOW);
    assert!(d.is_dynamic());
    assert_eq!(d.last_used.get(), NOW);
    d.count_handshake(false, NOW + 9);
    assert_eq!(d.last_used.get(), NOW + 9);
}

#[test]
fn a_must_staple_gap_is_logged_at_most_once_per_interval() {
    let mut e = entry();
    assert!(e.take_gap_log(NOW, 60));
    assert!(!e.take_gap_log(NOW + 59, 60));
    assert!(e.take_gap_log(NOW + 60, 60));
    assert!(!e.take_gap_log(NOW + 61, 60));
}
