//! The verifier's prompt cache: the keys and values of recently verified prompts, so a
//! verification whose prompt starts like an earlier one's skips that part of the
//! prefill (the part that dominates a short answer's verification).
//!
//! Reuse is exact: a position's keys and values depend only on the tokens up to it, and
//! the forward pass gives the same values however the tokens are batched (every output
//! element is computed by one thread in one order), so a verification that reuses a
//! cached prefix sees the same hidden states and logits as one that recomputes it. The
//! cache belongs to one [`crate::Engine`], so one model file.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;
use crate::model::{Model, Session};

/// Shortest shared prefix worth copying instead of recomputing.
pub const MIN_REUSE: usize = 16;

/// Default memory for cached keys and values: 64 MiB (about 1,400 positions of
/// SmolLM2-135M).
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

/// Key/value caches of prompts, least recently used dropped first beyond a byte budget.
pub struct PrefixCache {
    inner: Mutex<Entries>,
    budget_bytes: usize,
}

#[derive(Default)]
struct Entries {
    list: Vec<Entry>,
    clock: u64,
    hits: u64,
    reused_positions: u64,
}

struct Entry {
    tokens: Vec<u32>,
    session: Arc<Session>,
    bytes: usize,
    last_used: u64,
}

/// A cached prefix found for a prompt.
pub struct Reuse {
    /// Leading positions of the prompt whose keys and values `session` holds.
    pub positions: usize,
    /// The cached session (its first `positions` positions are the prompt's).
    pub session: Arc<Session>,
}

/// What the cache holds and has saved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrefixStats {
    /// Prompts cached now.
    pub entries: usize,
    /// Bytes of keys and values cached now.
    pub bytes: usize,
    /// Lookups that found a prefix.
    pub hits: u64,
    /// Positions not recomputed thanks to those hits.
    pub reused_positions: u64,
}

impl std::fmt::Debug for PrefixCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixCache")
            .field("budget_bytes", &self.budget_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for PrefixCache {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

impl PrefixCache {
    /// An empty cache holding at most `budget_bytes` of keys and values (0: never caches).
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Entries::default()),
            budget_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // The entries stay consistent whatever panicked while holding the lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached prompt sharing the longest prefix with `tokens` (at least
    /// [`MIN_REUSE`] positions), if any.
    pub fn lookup(&self, tokens: &[u32]) -> Option<Reuse> {
        let mut entries = self.lock();
        entries.clock = entries.clock.wrapping_add(1);
        let clock = entries.clock;
        let best = entries
            .list
            .iter_mut()
            .map(|e| {
                let shared = e
                    .tokens
                    .iter()
                    .zip(tokens)
                    .take_while(|(a, b)| a == b)
                    .count();
                (shared, e)
            })
            .filter(|(shared, _)| *shared >= MIN_REUSE)
            .max_by_key(|(shared, _)| *shared)
            .map(|(shared, e)| {
                e.last_used = clock;
                Reuse {
                    positions: shared,
                    session: e.session.clone(),
                }
            });
        if let Some(reuse) = &best {
            entries.hits = entries.hits.wrapping_add(1);
            entries.reused_positions = entries
                .reused_positions
                .wrapping_add(reuse.positions as u64);
        }
        best
    }

    /// Caches the keys and values of `tokens`, the first `tokens.len()` positions of
    /// `session`, dropping the least recently used prompts beyond the budget. Copies
    /// nothing for a prompt it would not keep (too short, larger than the budget, or
    /// cached already).
    pub fn insert(&self, model: &Model, tokens: &[u32], session: &Session) -> Result<()> {
        let bytes = model.kv_bytes(tokens.len());
        let cached = |entries: &Entries| entries.list.iter().any(|e| e.tokens == tokens);
        if tokens.len() < MIN_REUSE || bytes > self.budget_bytes || cached(&self.lock()) {
            return Ok(());
        }
        // Copied outside the lock: lookups go on meanwhile.
        let snapshot = model.session_from(session, tokens.len(), tokens.len())?;
        let mut entries = self.lock();
        if cached(&entries) {
            return Ok(());
        }
        entries.clock = entries.clock.wrapping_add(1);
        let last_used = entries.clock;
        entries.list.push(Entry {
            tokens: tokens.to_vec(),
            session: Arc::new(snapshot),
            bytes,
            last_used,
        });
        while entries.list.iter().map(|e| e.bytes).sum::<usize>() > self.budget_bytes {
            let Some(oldest) = entries
                .list
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
            else {
                break;
            };
            entries.list.swap_remove(oldest);
        }
        Ok(())
    }

    /// Forgets every cached prompt (the counters stay).
    pub fn clear(&self) {
        self.lock().list.clear();
    }

    /// Entries, bytes and savings so far.
    pub fn stats(&self) -> PrefixStats {
        let entries = self.lock();
        PrefixStats {
            entries: entries.list.len(),
            bytes: entries.list.iter().map(|e| e.bytes).sum(),
            hits: entries.hits,
            reused_positions: entries.reused_positions,
        }
    }
}
