//! Prometheus metrics of the node, rendered at `/metrics` by the RPC server.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// The node's metrics.
pub struct Metrics {
    /// Head block number.
    pub height: Gauge,
    /// Transactions included in blocks since start.
    pub transactions: Counter,
    /// Transactions waiting in the pool.
    pub mempool_size: Gauge,
    /// Time to execute a block's transactions.
    pub block_execution_seconds: Histogram,
    /// Time to compute the state root and commit a block.
    pub block_commit_seconds: Histogram,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = || {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        };
        let height = Gauge::default();
        let transactions = Counter::default();
        let mempool_size = Gauge::default();
        let block_execution_seconds = buckets();
        let block_commit_seconds = buckets();
        let mut registry = Registry::with_prefix("noesis");
        registry.register("chain_height", "Head block number", height.clone());
        registry.register(
            "chain_transactions",
            "Transactions included in blocks",
            transactions.clone(),
        );
        registry.register(
            "mempool_size",
            "Transactions waiting in the pool",
            mempool_size.clone(),
        );
        registry.register(
            "block_execution_seconds",
            "Time to execute a block's transactions",
            block_execution_seconds.clone(),
        );
        registry.register(
            "block_commit_seconds",
            "Time to compute the state root and commit a block",
            block_commit_seconds.clone(),
        );
        Self {
            height,
            transactions,
            mempool_size,
            block_execution_seconds,
            block_commit_seconds,
            registry,
        }
    }
}

impl Metrics {
    /// Renders the metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
