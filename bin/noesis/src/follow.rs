//! Follower mode of `noesis node` (ADR 0013): a full node that votes on nothing. The
//! `[follow]` section names validators' JSON-RPC URLs (the sources) and the validator
//! set. The node asks a source for finalized blocks with their certificates
//! (`noesis_getFinalizedBlocks`), checks them against the validator set, re-executes
//! and commits them, and serves JSON-RPC like any node. Transactions it accepts are
//! forwarded to a source, whose validator gossips them to the others.
//!
//! A source is trusted for liveness only: a run it serves that is malformed or not
//! certified by a quorum of the validators is refused and the next source is asked.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::B256;
use commonware_cryptography::ed25519::PublicKey;
use commonware_utils::ordered::Set;
use noesis_consensus::{Certified, Follower};
use noesis_node::Chain;
use noesis_rpc::FinalizedBlocks;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::client::RpcClient;
use noesis_roles::rpc::NodeRefused;

/// How long to wait before asking again when the node has every finalized block.
const POLL: Duration = Duration::from_millis(100);
/// How long to wait before asking the next source after one failed.
const RETRY: Duration = Duration::from_millis(500);
/// How long one request to a source may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Blocks asked for per request.
const BATCH: u64 = 64;
/// Transactions kept for another forwarding attempt while no source takes them.
const MAX_UNFORWARDED: usize = 10_000;

/// The `[follow]` section: present, the node follows validators instead of producing
/// blocks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowSection {
    /// Validators' JSON-RPC URLs, asked in turn (a source that fails is skipped).
    pub sources: Vec<String>,
}

/// A checked `[follow]` section.
pub struct FollowConfig {
    sources: Vec<String>,
    validators: Set<PublicKey>,
}

impl FollowConfig {
    /// Checks the section (at least one source, each an http(s) URL) and the chain
    /// spec's validator set `set`, whose certificates the follower accepts.
    pub fn load(section: &FollowSection, set: &[B256]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !section.sources.is_empty(),
            "[follow] sources is empty: list the JSON-RPC URL of at least one validator"
        );
        for (i, url) in section.sources.iter().enumerate() {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "[follow] source {i} ({url:?}) is not an http:// or https:// URL"
            );
        }
        let keys = crate::consensus::validator_set(set)?;
        Ok(Self {
            sources: section.sources.clone(),
            validators: Set::from_iter_dedup(keys),
        })
    }

    /// The sources.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Size of the validator set.
    pub fn count(&self) -> usize {
        self.validators.len()
    }

    /// Starts following on `chain`: the block loop and the transaction forwarder run
    /// as tasks of the current runtime.
    pub fn spawn(self, chain: Arc<Chain>) -> Arc<FollowStatus> {
        let namespace = crate::consensus::namespace(chain.chain_id());
        let head = chain.head().header.number;
        let status = Arc::new(FollowStatus {
            clients: self.sources.iter().map(|u| RpcClient::new(u)).collect(),
            sources: self.sources.clone(),
            validators: self
                .validators
                .iter()
                .map(crate::consensus::public_key_hex)
                .collect(),
            started_at: head,
            highest: AtomicU64::new(head),
            source: AtomicUsize::new(0),
            last_error: Mutex::new(None),
            chain: chain.clone(),
        });
        let follower = Arc::new(Follower::new(chain.clone(), &namespace, self.validators));
        tokio::spawn(follow_blocks(follower, status.clone()));
        tokio::spawn(forward_transactions(chain, status.clone()));
        status
    }
}

/// What a follower reports over JSON-RPC.
pub struct FollowStatus {
    sources: Vec<String>,
    /// A client per source, in the same order.
    clients: Vec<RpcClient>,
    validators: Vec<String>,
    started_at: u64,
    /// The newest finalized height the current source reported.
    highest: AtomicU64,
    /// Index of the source asked now.
    source: AtomicUsize,
    last_error: Mutex<Option<String>>,
    chain: Arc<Chain>,
}

impl FollowStatus {
    /// Index of the source asked now.
    fn index(&self) -> usize {
        self.source.load(Ordering::Relaxed) % self.sources.len()
    }

    fn current(&self) -> &str {
        &self.sources[self.index()]
    }

    /// The client of the source asked now.
    fn client(&self) -> &RpcClient {
        &self.clients[self.index()]
    }

    /// Records a failure of the current source and moves to the next one.
    fn fail(&self, error: String) {
        tracing::warn!(source = self.current(), "{error}");
        *self.last_error.lock() = Some(format!("{}: {error}", self.current()));
        self.source.fetch_add(1, Ordering::Relaxed);
    }
}

impl noesis_rpc::ConsensusInfo for FollowStatus {
    fn status(&self) -> serde_json::Value {
        let head = self.chain.head().header.number;
        json!({
            "role": "follower",
            "validators": self.validators,
            "sources": self.sources,
            "source": self.current(),
            "committed": head,
            "finalizedTip": self.highest.load(Ordering::Relaxed).max(head),
            "syncing": self.syncing().is_some(),
            "lastError": *self.last_error.lock(),
        })
    }

    fn peer_count(&self) -> u64 {
        // The source it follows, while that source answers.
        u64::from(self.last_error.lock().is_none())
    }

    fn syncing(&self) -> Option<(u64, u64, u64)> {
        let head = self.chain.head().header.number;
        let highest = self.highest.load(Ordering::Relaxed);
        (highest > head + 1).then_some((self.started_at, head, highest))
    }
}

/// Asks the sources for finalized blocks above the head and commits them, forever.
async fn follow_blocks(follower: Arc<Follower>, status: Arc<FollowStatus>) {
    loop {
        let client = status.client();
        let from = follower.chain().head().header.number + 1;
        let request = client.call(
            "noesis_getFinalizedBlocks",
            json!([format!("{from:#x}"), format!("{BATCH:#x}")]),
        );
        let answer = match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(value)) => serde_json::from_value::<FinalizedBlocks>(value)
                .map_err(|e| format!("noesis_getFinalizedBlocks: malformed answer: {e}")),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!(
                "noesis_getFinalizedBlocks: no answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            )),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                status.fail(e);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        *status.last_error.lock() = None;
        // What the source asked now says (not the highest any source ever claimed).
        status
            .highest
            .store(answer.latest.to::<u64>(), Ordering::Relaxed);
        if answer.blocks.is_empty() {
            tokio::time::sleep(POLL).await;
            continue;
        }
        let run: Vec<Certified> = answer
            .blocks
            .into_iter()
            .map(|b| Certified {
                block: b.block.to_vec(),
                finalization: b.finalization.map(|f| f.to_vec()),
            })
            .collect();
        // Re-execution is CPU work: keep it off the RPC's worker threads.
        let applying = follower.clone();
        let outcome = tokio::task::spawn_blocking(move || applying.apply(&run)).await;
        match outcome {
            Ok(Ok(0)) => tokio::time::sleep(POLL).await,
            Ok(Ok(committed)) => {
                tracing::debug!(committed, head = from + committed as u64 - 1, "followed")
            }
            Ok(Err(e)) if e.is_source_fault() => {
                status.fail(format!("refused blocks from {from}: {e}"));
                tokio::time::sleep(RETRY).await;
            }
            Ok(Err(e)) => {
                // This node cannot commit what the validators finalized (its store
                // failed, or it executes differently): retrying is all it can do.
                tracing::error!("cannot commit finalized blocks from {from}: {e}");
                *status.last_error.lock() = Some(e.to_string());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!("the block check stopped: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Sends every transaction the pool accepts to a source (its validator gossips it to
/// the others). Transactions no source took are retried with the next ones.
async fn forward_transactions(chain: Arc<Chain>, status: Arc<FollowStatus>) {
    let mut pending = chain.subscribe_pending();
    let mut unforwarded: VecDeque<B256> = VecDeque::new();
    loop {
        // With transactions waiting for a source, wake up to retry them.
        let next = if unforwarded.is_empty() {
            Some(pending.recv().await)
        } else {
            tokio::time::timeout(RETRY, pending.recv()).await.ok()
        };
        match next {
            Some(Ok(hash)) => unforwarded.push_back(hash),
            Some(Err(RecvError::Lagged(missed))) => {
                tracing::warn!(
                    missed,
                    "transaction forwarding fell behind the pool; those stay local"
                );
            }
            Some(Err(RecvError::Closed)) => return,
            None => {}
        }
        while let Ok(hash) = pending.try_recv() {
            unforwarded.push_back(hash);
        }
        while let Some(&hash) = unforwarded.front() {
            // Gone from the pool: included in a committed block, or replaced.
            let Some(pooled) = chain.pooled(&hash) else {
                unforwarded.pop_front();
                continue;
            };
            let raw = format!(
                "0x{}",
                alloy_primitives::hex::encode(pooled.tx.encoded_2718())
            );
            let mut sent = false;
            for _ in 0..status.sources.len() {
                let call = status.client().call("eth_sendRawTransaction", json!([raw]));
                match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
                    Ok(Ok(_)) => {
                        sent = true;
                        break;
                    }
                    // The source judged it (already known, nonce too low, …): it has
                    // it or will never take it; either way resending will not help.
                    Ok(Err(e)) if e.downcast_ref::<NodeRefused>().is_some() => {
                        tracing::debug!(%hash, "a source refused a forwarded transaction: {e:#}");
                        sent = true;
                        break;
                    }
                    _ => status.source.fetch_add(1, Ordering::Relaxed),
                };
            }
            if !sent {
                break;
            }
            unforwarded.pop_front();
        }
        while unforwarded.len() > MAX_UNFORWARDED {
            unforwarded.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_checked() {
        let (_, key) = crate::consensus::generate_key();
        let set = vec![key.parse::<B256>().unwrap()];
        let section = |sources: &[&str]| FollowSection {
            sources: sources.iter().map(|s| s.to_string()).collect(),
        };
        let err = |s: FollowSection, set: &[B256]| {
            format!("{:#}", FollowConfig::load(&s, set).err().unwrap())
        };
        let ok = FollowConfig::load(&section(&["http://127.0.0.1:18545"]), &set).unwrap();
        assert_eq!((ok.sources().len(), ok.count()), (1, 1));
        assert!(err(section(&[]), &set).contains("sources is empty"));
        assert!(err(section(&["127.0.0.1:18545"]), &set).contains("not an http"));
        assert!(err(section(&["http://a"]), &[]).contains("lists no validators"));
    }
}
