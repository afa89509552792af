//! JSON-RPC requests as they arrive over HTTP or WebSocket, dispatched to the real
//! `eth_*` / `net_*` / `web3_*` handlers of an in-process dev node (genesis only, the
//! ten funded dev accounts, no sealer). No input may panic a handler.
//!
//! Batches (a JSON array) are split and each element is dispatched on its own, as the
//! server does (`RpcModule::raw_json_request` takes one request at a time).

#![no_main]

use std::sync::{Arc, OnceLock};

use alloy_signer_local::PrivateKeySigner;
use jsonrpsee::RpcModule;
use libfuzzer_sys::fuzz_target;
use noesis_node::Chain;
use noesis_primitives::{ChainSpec, dev_accounts};
use noesis_rpc::{EthRpc, rpc_module};
use serde_json::value::RawValue;

/// Same cap on batch length as the server.
const MAX_BATCH: usize = noesis_rpc::server::MAX_BATCH as usize;
/// Pool size as in `noesis dev`.
const POOL_CAPACITY: usize = 10_000;

struct Harness {
    runtime: tokio::runtime::Runtime,
    module: RpcModule<()>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let datadir = std::env::temp_dir().join(format!("noesis-fuzz-jsonrpc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&datadir);
        std::fs::create_dir_all(&datadir).expect("create datadir");
        let chain = Chain::open(&datadir, ChainSpec::dev(), POOL_CAPACITY).expect("open chain");
        let signers = dev_accounts(10)
            .iter()
            .map(|a| PrivateKeySigner::from_bytes(&a.private_key).expect("dev key"))
            .collect();
        let eth = EthRpc::new(chain, signers, Arc::new(|| {}));
        let module = rpc_module(eth).expect("rpc module");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Harness { runtime, module }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let h = harness();
    h.runtime.block_on(async {
        let requests: Vec<&str> = match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(batch) => batch.into_iter().take(MAX_BATCH).map(RawValue::get).collect(),
            Err(_) => vec![text],
        };
        for request in requests {
            // Err is a parse error of the request envelope: fine. The response itself is
            // whatever the handler produced, error objects included.
            if let Ok((response, stream)) = h.module.raw_json_request(request, 1).await {
                // Every response must be valid JSON.
                serde_json::from_str::<&RawValue>(response.get()).expect("response is not JSON");
                // Dropping the stream ends any subscription; let its task see that.
                drop(stream);
                tokio::task::yield_now().await;
            }
        }
    });
});
