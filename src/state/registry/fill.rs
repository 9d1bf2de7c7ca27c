//! The zone at each start and reload: what a previous cycle left is
//! kept, file and stored staples are put in, removed staples freed.

use std::collections::{HashMap, HashSet};

use super::StaplingContext;
use crate::base::log::{log_crit, log_notice, Log};
use crate::ocsp::schedule;
use crate::state::certificate::StapleKey;
use crate::state::zone::{Prepared, SizeGuess, StapleSource, Zone, ZoneFull};

impl StaplingContext {
    /// Zone init (master, every start and reload): keep what a previous
    /// cycle left, put this configuration's file staples in, free entries of
    /// certificates no longer configured.
    pub fn fill_zone(&self, zone: Zone, name: &str, log_: Log, now: i64) -> Result<(), ZoneFull> {
        self.zone.set(Some(zone));
        *self.zone_name.borrow_mut() = name.to_string();
        let mut z = zone.lock();
        let (prepared, seq) = z.prepare()?;
        if let Prepared::Wiped = prepared {
            log_notice!(log_, "zone had another layout, started afresh");
        }
        let mut from_files = 0;
        let mut from_store = 0;
        // Read and check outside the lock (file I/O, signatures), only for
        // certificates the zone has no staple for (all, at a start).
        let wanted: HashSet<StapleKey> = if self.store.is_some() {
            self.certs
                .iter()
                .filter(|c| {
                    c.plan.is_some() && !matches!(z.find(&c.key), Some(e) if e.servable(now).is_some())
                })
                .map(|c| c.key)
                .collect()
        } else {
            HashSet::new()
        };
        drop(z);
        let stored: HashMap<_, _> = self.read_store(&wanted, log_, now).into_iter().collect();
        let mut z = zone.lock();
        // Entries a previous cycle left for staples still configured are
        // kept; those of removed ones are freed before new ones take room.
        let mut known = HashSet::new();
        for cert in &self.certs {
            if z.find(&cert.key).is_some() && z.register(&cert.key, seq).is_ok() {
                known.insert(cert.key);
            }
        }
        let freed = z.sweep(seq);
        // A new entry is made only with room for its staple too: a zone too
        // small for every staple serves those that fit, rather than filling
        // up with entries that can never hold one.
        // Staples not known yet are reckoned at the median of those known
        // now (files, the store, the zone), or else at the configuration
        // time's guess.
        let known_sizes: Vec<usize> = self
            .certs
            .iter()
            .filter_map(|c| {
                if known.contains(&c.key) {
                    z.find(&c.key).and_then(|e| e.der().map(|d| d.len()))
                } else {
                    c.file_staple
                        .as_ref()
                        .or_else(|| stored.get(&c.key))
                        .map(|r| r.der.len())
                }
            })
            .collect();
        let guess = if known_sizes.is_empty() {
            self.size_guess()
        } else {
            SizeGuess::from_known(known_sizes)
        };
        let mut room = z.room_plan();
        let mut no_room = HashSet::new();
        for cert in &self.certs {
            if !known.contains(&cert.key) {
                let staple = cert
                    .file_staple
                    .as_ref()
                    .or_else(|| stored.get(&cert.key))
                    .map_or(guess.for_need(), |r| r.der.len());
                if !room.try_add(staple) {
                    no_room.insert(cert.key);
                    continue;
                }
            }
            let Ok(mut entry) = z.register(&cert.key, seq) else {
                no_room.insert(cert.key);
                continue;
            };
            match &cert.file_staple {
                Some(resp) => match entry.store(resp, StapleSource::File, now) {
                    Ok(()) => from_files += 1,
                    Err(ZoneFull) => {
                        no_room.insert(cert.key);
                    }
                },
                // A staple that came from a file no longer configured (or
                // no longer valid) must not outlive the configuration.
                None if entry.source() == StapleSource::File => entry.clear(),
                None => {}
            }
            // A restart: the store has what the last nginx fetched.
            if cert.plan.is_some() && entry.servable(now).is_none() {
                if let Some(resp) = stored.get(&cert.key) {
                    if entry.store(resp, StapleSource::Store, now).is_err() {
                        no_room.insert(cert.key);
                        continue;
                    }
                    let random = nginx_sys::ngx_random() as u32;
                    entry.set_next_refresh(schedule::after_success(
                        &self.settings.policy,
                        resp.this_update,
                        resp.next_update,
                        now,
                        random,
                    ));
                    from_store += 1;
                }
            }
        }
        z.trim_dynamic(self.settings.dynamic_max);
        if !no_room.is_empty() {
            // Once per configuration: the workers log later failures at
            // debug.
            z.take_full_warning();
        }
        let usage = z.usage();
        drop(z);
        if !no_room.is_empty() {
            log_crit!(
                log_,
                "zone \"{name}\" ({} KB) is full: no room for {} of {} staple(s), \
                 which are not fetched or served; about {} KB needed: raise its size with \
                 \"ssl_stapling_zone\"",
                usage.size / 1024,
                no_room.len(),
                self.certs.len(),
                self.zone_bytes_needed().div_ceil(1024)
            );
        }
        let without_room = no_room.len();
        *self.no_room.borrow_mut() = no_room;
        log_notice!(
            log_,
            "module took over {} certificate(s), {} staple(s), in {} http and {} stream \
             server(s); {} staple(s) from files, {} from the store, {} stale entr(ies) freed, \
             {} in zone \"{name}\" ({} of {} KB used){}",
            self.certs.iter().map(|c| c.sha256).collect::<HashSet<_>>().len(),
            self.certs.len(),
            self.http_servers,
            self.stream_servers,
            from_files,
            from_store,
            freed,
            usage.entries,
            usage.used() / 1024,
            usage.size / 1024,
            if without_room > 0 {
                format!(", {without_room} without room")
            } else {
                String::new()
            }
        );
        Ok(())
    }
}
