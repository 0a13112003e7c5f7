//! API keys this process has looked up, so an authenticated request does not
//! pay a pool checkout and a round trip to learn whose key it carries.
//!
//! What is cached never changes: a key's business and secret hash are
//! written once (`ontab_app` may UPDATE only `api_keys.revoked_at`). The one
//! thing that does change, revocation, is not taken from the cache: every
//! tenant transaction re-reads its key's liveness in the statement that
//! begins it (`db::TenantTx`), which holds across server instances, and a
//! key found revoked there is forgotten here.
//!
//! Unknown ids are not cached. An id that is not found is mistyped, guessed
//! or revoked; remembering it would let anyone fill the cache with random ids
//! (pushing out real keys) for no gain, and such a request costs one lookup,
//! as every request did before this cache.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

use crate::db::api_keys::KeyRecord;

/// Key id -> record, bounded.
///
/// A plain mutex: each critical section is one hash probe and a 64-byte
/// copy, far shorter than anything a lock-free map or an RwLock would save.
pub struct KeyCache {
    entries: Mutex<HashMap<Uuid, KeyRecord>>,
    capacity: usize,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::with_capacity(capacity)),
            capacity,
        }
    }

    pub fn get(&self, key_id: Uuid) -> Option<KeyRecord> {
        self.entries().get(&key_id).copied()
    }

    /// Remembers a live key. When full, an arbitrary entry makes room: the
    /// cache is meant to hold the keys in use, which normally fit many times
    /// over; when they do not, any policy degrades towards one lookup per
    /// request (the cost without a cache), and this one needs no
    /// bookkeeping on the read path.
    pub fn insert(&self, key_id: Uuid, record: KeyRecord) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity && !entries.contains_key(&key_id) {
            let victim = entries.keys().next().copied();
            if let Some(victim) = victim {
                entries.remove(&victim);
            }
        }
        if self.capacity > 0 {
            entries.insert(key_id, record);
        }
    }

    /// Forgets a key found revoked (or gone), so its next use is looked up.
    pub fn forget(&self, key_id: Uuid) {
        self.entries().remove(&key_id);
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<Uuid, KeyRecord>> {
        // A poisoned lock only means a thread panicked while holding it;
        // every operation leaves the map consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(byte: u8) -> KeyRecord {
        KeyRecord {
            business_id: Uuid::new_v4(),
            secret_sha256: [byte; 32],
        }
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = KeyCache::new(3);
        let ids: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
        for (n, id) in ids.iter().enumerate() {
            cache.insert(*id, record(n as u8));
            assert!(cache.len() <= 3);
        }
        // The last key inserted is always there.
        assert_eq!(
            cache.get(ids[9]).map(|found| found.secret_sha256),
            Some([9; 32])
        );
    }

    #[test]
    fn refreshing_a_present_key_evicts_nothing() {
        let cache = KeyCache::new(2);
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        cache.insert(first, record(1));
        cache.insert(second, record(2));
        cache.insert(second, record(2));
        assert!(cache.get(first).is_some() && cache.get(second).is_some());
    }

    #[test]
    fn a_forgotten_key_is_looked_up_again() {
        let cache = KeyCache::new(2);
        let id = Uuid::new_v4();
        cache.insert(id, record(1));
        cache.forget(id);
        assert!(cache.get(id).is_none());
    }

    #[test]
    fn a_cache_of_capacity_zero_holds_nothing() {
        let cache = KeyCache::new(0);
        let id = Uuid::new_v4();
        cache.insert(id, record(1));
        assert!(cache.get(id).is_none());
    }
}
