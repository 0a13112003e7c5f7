//! Keyset pagination: a page starts strictly after the last row of the
//! previous one, so pages stay stable while rows are added.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Position of a row in a list ordered by creation time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedKey {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// A page request: at most `limit` rows after `after`.
#[derive(Debug, Clone, Copy)]
pub struct Page<K> {
    pub limit: i64,
    pub after: Option<K>,
}

impl<K: Copy> Page<K> {
    /// One row more than asked tells whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and returns the key to continue from, if any.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> K) -> (Vec<T>, Option<K>) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if rows.len() > limit {
            rows.truncate(limit);
            let next = rows.last().map(key);
            (rows, next)
        } else {
            (rows, None)
        }
    }
}

impl Page<CreatedKey> {
    /// The keyset bound as two nullable parameters.
    pub fn after_parts(&self) -> (Option<DateTime<Utc>>, Option<Uuid>) {
        match self.after {
            Some(key) => (Some(key.created_at), Some(key.id)),
            None => (None, None),
        }
    }
}

/// A listed page: its rows and where the next one starts.
#[derive(Debug)]
pub struct Listed<T, K> {
    pub rows: Vec<T>,
    pub next: Option<K>,
}
