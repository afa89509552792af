//! What JSON-RPC shows of the consensus engine, behind a narrow trait so this crate
//! does not depend on it: `noesis_consensus` (view, leader, validators, peers,
//! finalized tip), `eth_syncing` (catching up or not) and, on a validator,
//! `noesis_getFinalizedBlocks` (blocks with their finalization certificates, which
//! followers check and commit). A dev node has no engine.

use std::{future::Future, pin::Pin};

use alloy_primitives::{Bytes, U64};
use serde::{Deserialize, Serialize};

/// Consensus state as RPC reads it. The binary implements it over the running engine
/// (a validator) or over the loop that follows validators (a follower).
pub trait ConsensusInfo: Send + Sync {
    /// The JSON answered by `noesis_consensus`.
    fn status(&self) -> serde_json::Value;
    /// `Some((starting, current, highest))` block numbers while the node catches up
    /// with the network, `None` once it follows the tip.
    fn syncing(&self) -> Option<(u64, u64, u64)>;
    /// How many peers this node exchanges blocks with now (`net_peerCount`).
    fn peer_count(&self) -> u64;
    /// The finalized blocks from `from` on (at most `limit`) with their certificates;
    /// `None` when this node stores no certificates (it is not a validator).
    fn finalized_blocks(&self, from: u64, limit: usize) -> FinalizedFuture {
        let _ = (from, limit);
        Box::pin(std::future::ready(None))
    }
}

/// What [`ConsensusInfo::finalized_blocks`] answers.
pub type FinalizedFuture = Pin<Box<dyn Future<Output = Option<FinalizedBlocks>> + Send>>;

/// The answer of `noesis_getFinalizedBlocks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizedBlocks {
    /// Height of the newest finalized block the validator stores.
    pub latest: U64,
    /// Consecutive finalized blocks from the height asked for, up to the first one not
    /// stored (empty when that one is not).
    pub blocks: Vec<FinalizedBlock>,
}

/// One finalized block as validators serve it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizedBlock {
    /// The block: RLP of the header and the transactions.
    pub block: Bytes,
    /// The finalization certificate of this block (the proposal and a quorum of the
    /// validators' signatures), or null when the block was finalized only through a
    /// descendant's certificate.
    pub finalization: Option<Bytes>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use alloy_primitives::U256;
    use jsonrpsee::RpcModule;
    use noesis_node::Chain;
    use noesis_primitives::ChainSpec;
    use parking_lot::Mutex;
    use serde_json::{Value, json};

    use super::ConsensusInfo;
    use crate::{EthRpc, rpc_module};

    /// A consensus engine whose answers the test sets.
    struct Fake {
        syncing: Mutex<Option<(u64, u64, u64)>>,
        /// The last `(from, limit)` asked of `finalized_blocks`.
        asked: Mutex<Option<(u64, usize)>>,
    }

    impl ConsensusInfo for Fake {
        fn status(&self) -> Value {
            json!({"view": 7, "leader": "ab", "validators": [], "peers": [], "finalizedTip": 0})
        }
        fn syncing(&self) -> Option<(u64, u64, u64)> {
            *self.syncing.lock()
        }
        fn peer_count(&self) -> u64 {
            3
        }
        fn finalized_blocks(&self, from: u64, limit: usize) -> super::FinalizedFuture {
            *self.asked.lock() = Some((from, limit));
            let blocks = vec![
                super::FinalizedBlock {
                    block: vec![0xc0, 1].into(),
                    finalization: None,
                },
                super::FinalizedBlock {
                    block: vec![0xc0, 2].into(),
                    finalization: Some(vec![9, 9].into()),
                },
            ];
            Box::pin(std::future::ready(Some(super::FinalizedBlocks {
                latest: alloy_primitives::U64::from(from + 1),
                blocks,
            })))
        }
    }

    /// A follower: it reports consensus but serves no certificates.
    struct Follower;

    impl ConsensusInfo for Follower {
        fn status(&self) -> Value {
            json!({"role": "follower"})
        }
        fn syncing(&self) -> Option<(u64, u64, u64)> {
            None
        }
        fn peer_count(&self) -> u64 {
            1
        }
    }

    fn fake() -> Arc<Fake> {
        Arc::new(Fake {
            syncing: Mutex::new(None),
            asked: Mutex::new(None),
        })
    }

    fn module(dir: &std::path::Path, consensus: Option<Arc<dyn ConsensusInfo>>) -> RpcModule<()> {
        let chain = Chain::open(dir, ChainSpec::dev(), 16).expect("open chain");
        let mut eth = EthRpc::new(chain, Vec::new(), Arc::new(|| {}));
        if let Some(consensus) = consensus {
            eth = eth.with_consensus(consensus);
        }
        rpc_module(eth).expect("module")
    }

    /// The response object (`result` or `error`) of one call.
    async fn call(module: &RpcModule<()>, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (response, _) = module
            .raw_json_request(&request.to_string(), 1)
            .await
            .expect("request");
        serde_json::from_str(response.get()).expect("json")
    }

    #[tokio::test]
    async fn dev_node_has_no_consensus_and_is_never_syncing() {
        let dir = tempfile::tempdir().unwrap();
        let module = module(dir.path(), None);
        let response = call(&module, "noesis_consensus", json!([])).await;
        assert_eq!(response["error"]["code"], -32601, "{response}");
        assert_eq!(
            response["error"]["message"],
            "consensus is not running: this node is in dev mode"
        );
        let response = call(&module, "eth_syncing", json!([])).await;
        assert_eq!(response["result"], false);
        let response = call(&module, "net_peerCount", json!([])).await;
        assert_eq!(response["result"], "0x0");
    }

    #[tokio::test]
    async fn validator_reports_consensus_and_catching_up() {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake();
        let module = module(dir.path(), Some(fake.clone()));
        let response = call(&module, "noesis_consensus", json!([])).await;
        assert_eq!(response["result"]["view"], 7);
        assert_eq!(response["result"]["leader"], "ab");
        let response = call(&module, "net_peerCount", json!([])).await;
        assert_eq!(response["result"], "0x3");

        assert_eq!(
            call(&module, "eth_syncing", json!([])).await["result"],
            false
        );
        *fake.syncing.lock() = Some((3, 10, 250));
        let result = call(&module, "eth_syncing", json!([])).await["result"].clone();
        assert_eq!(result["startingBlock"], "0x3");
        assert_eq!(result["currentBlock"], "0xa");
        assert_eq!(result["highestBlock"], "0xfa");
    }

    #[tokio::test]
    async fn validators_serve_finalized_blocks_with_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake();
        let validator = module(dir.path(), Some(fake.clone()));
        let response = call(&validator, "noesis_getFinalizedBlocks", json!(["0x5"])).await;
        assert_eq!(
            response["result"],
            json!({"latest": "0x6", "blocks": [
                {"block": "0xc001", "finalization": null},
                {"block": "0xc002", "finalization": "0x0909"},
            ]}),
            "{response}"
        );
        assert_eq!(*fake.asked.lock(), Some((5, 64)));
        call(
            &validator,
            "noesis_getFinalizedBlocks",
            json!(["0x1", "0x10000"]),
        )
        .await;
        assert_eq!(*fake.asked.lock(), Some((1, 64)), "the limit is capped");
        call(
            &validator,
            "noesis_getFinalizedBlocks",
            json!(["0x1", "0x3"]),
        )
        .await;
        assert_eq!(*fake.asked.lock(), Some((1, 3)));
        let response = call(&validator, "noesis_getFinalizedBlocks", json!(["five"])).await;
        assert_eq!(response["error"]["code"], -32602, "{response}");

        let follower = module(
            tempfile::tempdir().unwrap().path(),
            Some(Arc::new(Follower)),
        );
        let response = call(&follower, "noesis_getFinalizedBlocks", json!(["0x1"])).await;
        assert_eq!(response["error"]["code"], -32601, "{response}");
        assert_eq!(
            response["error"]["message"],
            "this node stores no finalization certificates: ask a validator"
        );
        let third = tempfile::tempdir().unwrap();
        let dev = module(third.path(), None);
        let response = call(&dev, "noesis_getFinalizedBlocks", json!(["0x1"])).await;
        assert_eq!(response["error"]["code"], -32601, "{response}");
    }

    #[tokio::test]
    async fn safe_and_finalized_name_the_head() {
        // Dev blocks are final once sealed, and a validator commits only finalized
        // blocks: either way the three tags are the same block.
        let dir = tempfile::tempdir().unwrap();
        let module = module(dir.path(), None);
        let latest = call(&module, "eth_getBlockByNumber", json!(["latest", false])).await;
        assert!(latest["result"]["hash"].is_string(), "{latest}");
        for tag in ["safe", "finalized"] {
            let block = call(&module, "eth_getBlockByNumber", json!([tag, false])).await;
            assert_eq!(block["result"]["hash"], latest["result"]["hash"], "{tag}");
        }
        let balance = call(
            &module,
            "eth_getBalance",
            json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "finalized"]),
        )
        .await;
        let expected = U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64));
        assert_eq!(balance["result"], json!(expected));
    }
}
