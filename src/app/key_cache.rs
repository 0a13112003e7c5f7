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

use uuid::Uuid;

use super::bounded_cache::BoundedCache;
use crate::db::api_keys::KeyRecord;

/// Key id -> record, bounded (see [`BoundedCache`] for what makes room).
pub type KeyCache = BoundedCache<Uuid, KeyRecord>;

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
            cache.get(&ids[9]).map(|found| found.secret_sha256),
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
        assert!(cache.get(&first).is_some() && cache.get(&second).is_some());
    }

    #[test]
    fn a_forgotten_key_is_looked_up_again() {
        let cache = KeyCache::new(2);
        let id = Uuid::new_v4();
        cache.insert(id, record(1));
        cache.forget(&id);
        assert!(cache.get(&id).is_none());
    }

    #[test]
    fn a_cache_of_capacity_zero_holds_nothing() {
        let cache = KeyCache::new(0);
        let id = Uuid::new_v4();
        cache.insert(id, record(1));
        assert!(cache.get(&id).is_none());
    }
}
