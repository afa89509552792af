//! Transaction gossip: every transaction a node's pool accepts from a client is sent
//! to the other validators, whose pools check it like any submission. Transactions
//! that arrived from a peer are not sent on again (every validator is a direct peer).
//!
//! A message is the RLP list of the transactions' EIP-2718 encodings, batched from
//! whatever the pool accepted since the last message.

use std::{
    collections::{BTreeSet, VecDeque},
    sync::Arc,
};

use alloy_primitives::{B256, keccak256};
use alloy_rlp::Decodable;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Handle, Spawner, Supervisor};
use noesis_node::Chain;
use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;

/// Most transactions in one gossip message.
pub const MAX_BATCH: usize = 1024;
/// Largest gossip message accepted, in bytes.
pub const MAX_MESSAGE: usize = 4 << 20;
/// How many peer-sent transaction hashes are remembered (not sent on again).
const REMEMBERED: usize = 1 << 16;

/// Hashes of transactions that came from peers, oldest evicted first.
#[derive(Default)]
struct FromPeers {
    order: VecDeque<B256>,
    set: BTreeSet<B256>,
}

impl FromPeers {
    fn insert(&mut self, hash: B256) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// Encodes a batch of raw transactions as one message.
pub fn encode_batch(raw: &[Vec<u8>]) -> Vec<u8> {
    let items: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
    let mut out = Vec::new();
    alloy_rlp::encode_list::<&[u8], [u8]>(&items, &mut out);
    out
}

/// Decodes a gossip message into raw transactions; `None` when it is malformed or
/// too large.
pub fn decode_batch(message: &[u8]) -> Option<Vec<alloy_primitives::Bytes>> {
    if message.len() > MAX_MESSAGE {
        return None;
    }
    let mut buf = message;
    let items = Vec::<alloy_primitives::Bytes>::decode(&mut buf).ok()?;
    (buf.is_empty() && items.len() <= MAX_BATCH).then_some(items)
}

/// Starts the outbound and inbound gossip tasks.
pub fn start<E, S, R>(
    context: E,
    chain: Arc<Chain>,
    (mut sender, mut receiver): (S, R),
) -> Vec<Handle<()>>
where
    E: Spawner + Supervisor,
    S: Sender,
    R: Receiver,
{
    let from_peers = Arc::new(Mutex::new(FromPeers::default()));
    let mut pending = chain.subscribe_pending();
    let out_chain = chain.clone();
    let out_seen = from_peers.clone();
    let outbound = context.child("out").spawn(move |_| async move {
        loop {
            let first = match pending.recv().await {
                Ok(hash) => hash,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "transaction gossip fell behind the pool");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let mut hashes = vec![first];
            while hashes.len() < MAX_BATCH {
                match pending.try_recv() {
                    Ok(hash) => hashes.push(hash),
                    Err(_) => break,
                }
            }
            let raw: Vec<Vec<u8>> = {
                let seen = out_seen.lock();
                hashes
                    .into_iter()
                    .filter(|h| !seen.set.contains(h))
                    .filter_map(|h| out_chain.pooled(&h))
                    .map(|pooled| alloy_eips::eip2718::Encodable2718::encoded_2718(&*pooled.tx))
                    .collect()
            };
            // Messages stay under the limit peers accept (a transaction is at most
            // 128 KiB, so one always fits).
            let mut batch = Vec::new();
            let mut size = 0;
            for tx in raw {
                if size + tx.len() + 8 > MAX_MESSAGE && !batch.is_empty() {
                    sender.send(Recipients::All, encode_batch(&batch), false);
                    batch.clear();
                    size = 0;
                }
                size += tx.len() + 8;
                batch.push(tx);
            }
            if !batch.is_empty() {
                sender.send(Recipients::All, encode_batch(&batch), false);
            }
        }
    });
    let inbound = context.child("in").spawn(move |_| async move {
        while let Ok((peer, message)) = receiver.recv().await {
            let Some(batch) = decode_batch(message.as_ref()) else {
                tracing::debug!(%peer, "malformed transaction gossip");
                continue;
            };
            for raw in batch {
                // A transaction's hash is the keccak of its EIP-2718 encoding; noted
                // before submitting so the outbound task never sends it back.
                from_peers.lock().insert(keccak256(&raw));
                let _ = chain.submit_raw(&raw);
            }
        }
    });
    vec![outbound, inbound]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_reject_trailing_bytes() {
        let raw = vec![vec![1u8, 2, 3], vec![0x02; 70]];
        let message = encode_batch(&raw);
        let decoded = decode_batch(&message).expect("decodes");
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[1].as_ref(), &raw[1][..]);
        let mut trailing = message.clone();
        trailing.push(0);
        assert!(decode_batch(&trailing).is_none());
        assert!(decode_batch(&[0xff]).is_none());
    }
}
