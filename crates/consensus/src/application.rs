//! The node's executor behind commonware's marshal: proposing builds a block from the
//! mempool on the parent's post-state, verifying re-executes a proposal and compares
//! its header, and every finalized block marshal delivers (in height order) is
//! committed to the store and acknowledged.
//!
//! Blocks above the committed head that were built or verified wait in memory as
//! [`ExecutedBlock`]s, so a proposal on a notarized but not yet finalized parent
//! executes on that parent's state without anything being written.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::UNIX_EPOCH,
};

use alloy_primitives::B256;
use commonware_actor::Feedback;
use commonware_consensus::{
    Application, Heightable, Reporter,
    marshal::{Update, ancestry::Ancestry},
    simplex::types::Context,
};
use commonware_cryptography::{Digested, ed25519::PublicKey, sha256::Digest};
use commonware_runtime::Clock;
use commonware_utils::Acknowledgement;
use futures::StreamExt;
use noesis_node::{Chain, CommitOutcome, ExecutedBlock};
use parking_lot::Mutex;

use crate::{Scheme, block::Block};

/// How far ahead of the local clock a proposed block's timestamp may be, in seconds.
/// A block further ahead is rejected (honest validators keep their clocks in sync).
pub const MAX_FUTURE_SECONDS: u64 = 15;

/// Consensus progress as the node's RPC reports it.
#[derive(Debug, Default)]
pub struct Progress {
    /// Height of the newest finalized block marshal knows of (it may not be committed
    /// locally yet while the node catches up).
    pub finalized_tip: AtomicU64,
    /// Height of the newest block committed to the store.
    pub committed: AtomicU64,
    /// Height of the committed head when the node started.
    pub started_at: AtomicU64,
}

/// The executor as a marshal application and finalized-block reporter.
#[derive(Clone)]
pub struct Executor {
    chain: Arc<Chain>,
    /// Blocks above the committed head that this node built or verified, by hash.
    pending: Arc<Mutex<BTreeMap<B256, Arc<ExecutedBlock>>>>,
    progress: Arc<Progress>,
}

impl Executor {
    /// An executor for `chain`.
    pub fn new(chain: Arc<Chain>) -> Self {
        let progress = Arc::new(Progress::default());
        let head = chain.head().header.number;
        progress.committed.store(head, Ordering::Relaxed);
        progress.finalized_tip.store(head, Ordering::Relaxed);
        progress.started_at.store(head, Ordering::Relaxed);
        Self {
            chain,
            pending: Arc::default(),
            progress,
        }
    }

    /// The chain it drives.
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// Consensus progress.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// The executed blocks from just above the committed head up to the first block
    /// of `ancestry` (newest first), oldest first. Blocks this node has not executed
    /// yet are executed now. `Err` when the ancestry does not chain onto the committed
    /// blocks or one of its blocks is invalid.
    async fn executed_ancestry(
        &self,
        mut ancestry: impl Ancestry<Block>,
    ) -> Result<Vec<Arc<ExecutedBlock>>, String> {
        let head = self.chain.head().header.number;
        let mut unexecuted = Vec::new();
        loop {
            let Some(block) = ancestry.next().await else {
                return Err("the ancestry ended above the committed head".into());
            };
            let block = block.inner().clone();
            if block.number() <= head {
                self.check_committed(&block)?;
                break;
            }
            unexecuted.push(block);
        }
        let mut executed: Vec<Arc<ExecutedBlock>> = Vec::with_capacity(unexecuted.len());
        for block in unexecuted.into_iter().rev() {
            // Finalized blocks are committed concurrently: one committed since the
            // walk is no longer pending (the chain skips such ancestors too).
            if block.number() <= self.chain.head().header.number {
                self.check_committed(&block)?;
                executed.clear();
                continue;
            }
            let known = self.pending.lock().get(&block.hash()).cloned();
            let done = match known {
                Some(done) => done,
                None => {
                    let proposed = block.proposed().clone();
                    let done = self
                        .chain
                        .execute_block(&executed, proposed.header, proposed.transactions)
                        .map_err(|e| format!("block {}: {e}", block.number()))?;
                    self.pending.lock().insert(done.hash(), done.clone());
                    done
                }
            };
            executed.push(done);
        }
        Ok(executed)
    }

    /// `Ok` when `block` is the committed block at its height; an error naming the
    /// conflict otherwise.
    fn check_committed(&self, block: &Block) -> Result<(), String> {
        let number = block.number();
        let committed = self
            .chain
            .store()
            .hash_by_number(number)
            .map_err(|e| e.to_string())?;
        if committed == Some(block.hash()) {
            Ok(())
        } else {
            Err(format!(
                "block {number} {} conflicts with the committed one {committed:?}",
                block.hash()
            ))
        }
    }

    /// Commits a finalized block (idempotent), executing it first if this node never
    /// verified it.
    fn commit_finalized(&self, block: &Block) -> Result<(), String> {
        let number = block.number();
        if number <= self.chain.head().header.number {
            return self.check_committed(block);
        }
        let known = self.pending.lock().get(&block.hash()).cloned();
        let executed = match known {
            Some(executed) => executed,
            None => {
                let proposed = block.proposed().clone();
                self.chain
                    .execute_block(&[], proposed.header, proposed.transactions)
                    .map_err(|e| format!("finalized block {number} does not execute: {e}"))?
            }
        };
        match self.chain.commit_executed(&executed) {
            Ok(CommitOutcome::Committed(_) | CommitOutcome::AlreadyCommitted) => {}
            Err(e) => return Err(format!("finalized block {number} not committed: {e}")),
        }
        self.pending.lock().retain(|_, b| b.number() > number);
        self.progress.committed.store(number, Ordering::Relaxed);
        Ok(())
    }
}

/// Seconds since the Unix epoch on the runtime's clock (deterministic in simulation).
fn now_seconds(clock: &impl Clock) -> u64 {
    clock
        .current()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<E: Clock + Send + Sync + 'static> Application<E> for Executor {
    type SigningScheme = Scheme;
    type Context = Context<Digest, PublicKey>;
    type Block = Block;
    type Input = ();

    async fn propose(
        &mut self,
        context: (E, Self::Context),
        ancestry: impl Ancestry<Block>,
        _input: (),
    ) -> Option<Digested<Block>> {
        let ancestors = match self.executed_ancestry(ancestry).await {
            Ok(ancestors) => ancestors,
            Err(e) => {
                tracing::warn!("not proposing: {e}");
                return None;
            }
        };
        let built = match self.chain.build_block(&ancestors, now_seconds(&context.0)) {
            Ok(built) => built,
            Err(e) => {
                tracing::error!("block building failed: {e}");
                return None;
            }
        };
        self.pending.lock().insert(built.hash(), built.clone());
        Some(Block::new(built.proposal()).digested())
    }

    async fn verify(
        &mut self,
        context: (E, Self::Context),
        ancestry: impl Ancestry<Block>,
    ) -> bool {
        let Some(block) = ancestry.peek().map(Digested::inner) else {
            return false;
        };
        let (number, timestamp) = (block.number(), block.proposed().header.timestamp);
        if timestamp > now_seconds(&context.0) + MAX_FUTURE_SECONDS {
            tracing::warn!(number, timestamp, "rejecting a block from the future");
            return false;
        }
        match self.executed_ancestry(ancestry).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(number, "rejecting block: {e}");
                false
            }
        }
    }
}

impl Reporter for Executor {
    type Activity = Update<Block>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match activity {
            Update::Tip(_, height, _) => {
                self.progress
                    .finalized_tip
                    .fetch_max(height.get(), Ordering::Relaxed);
            }
            Update::Block(block, ack) => match self.commit_finalized(block.inner()) {
                Ok(()) => {
                    self.progress
                        .finalized_tip
                        .fetch_max(block.height().get(), Ordering::Relaxed);
                    ack.acknowledge();
                }
                // Not acknowledging stops marshal: a finalized block that cannot be
                // committed is a bug or a safety violation, and going on would fork.
                Err(e) => tracing::error!("{e}; this node stops following the chain"),
            },
        }
        Feedback::Ok
    }
}
