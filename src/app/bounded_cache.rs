//! A map of what this process has looked up or worked out, bounded, behind
//! one mutex: the API keys it has seen (`key_cache`) and the webhook
//! endpoint URLs it has parsed (`webhooks::delivery`).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// Key -> value, at most `capacity` entries.
///
/// A plain mutex: each critical section is one hash probe and a small
/// copy, far shorter than anything a lock-free map or an RwLock would save.
pub struct BoundedCache<K, V> {
    entries: Mutex<HashMap<K, V>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::with_capacity(capacity)),
            capacity,
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries().get(key).cloned()
    }

    /// Remembers a value. When full, an arbitrary entry makes room: a cache
    /// here is meant to hold what is in use, which normally fits many times
    /// over; when it does not, any policy degrades towards one lookup per
    /// use (the cost without a cache), and this one needs no bookkeeping on
    /// the read path.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let victim = entries.keys().next().cloned();
            if let Some(victim) = victim {
                entries.remove(&victim);
            }
        }
        if self.capacity > 0 {
            entries.insert(key, value);
        }
    }

    /// Forgets a key, so its next use is looked up again.
    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries().remove(key);
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<K, V>> {
        // A poisoned lock only means a thread panicked while holding it;
        // every operation leaves the map consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries().len()
    }
}
