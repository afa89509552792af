//! Log queries (`eth_getLogs`) and polling filters (`eth_newFilter` and friends).

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{Filter, FilterBlockOption, Log};
use noesis_node::{Chain, chain::index_logs};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::{convert::rpc_log, error::RpcError};

/// Widest block range one `eth_getLogs` may scan.
pub const MAX_LOG_RANGE: u64 = 100_000;
/// Most logs one query may return.
pub const MAX_LOGS: usize = 20_000;
/// Filters not polled for this long are removed (as geth).
const FILTER_TIMEOUT: Duration = Duration::from_secs(300);

/// Logs in the blocks `filter` names, newest block bounded by `head_limit`.
pub fn logs_in_range(
    chain: &Chain,
    filter: &Filter,
    head_limit: Option<u64>,
) -> Result<Vec<Log>, RpcError> {
    let head = head_limit.unwrap_or_else(|| chain.head().header.number);
    let store = chain.store();
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let n = store
                .number_by_hash(&hash)?
                .ok_or_else(|| RpcError::NotFound(format!("unknown block {hash}")))?;
            (n, n)
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let resolve = |tag: Option<alloy_eips::BlockNumberOrTag>| match tag {
                Some(alloy_eips::BlockNumberOrTag::Number(n)) => n.min(head),
                Some(alloy_eips::BlockNumberOrTag::Earliest) => 0,
                _ => head,
            };
            (resolve(from_block), resolve(to_block))
        }
    };
    if from > to {
        return Err(RpcError::InvalidParams(format!(
            "invalid block range: fromBlock {from} is after toBlock {to}"
        )));
    }
    if to - from >= MAX_LOG_RANGE {
        return Err(RpcError::LimitExceeded(format!(
            "query exceeds max block range {MAX_LOG_RANGE}"
        )));
    }
    let mut out = Vec::new();
    for number in from..=to {
        let Some(header) = store.header_by_number(number)? else {
            break;
        };
        if !filter.matches_bloom(header.logs_bloom) {
            continue;
        }
        let Some(block) = store.block_by_number(number)? else {
            break;
        };
        let receipts = store.receipts(number)?;
        let system_logs = store.system_logs(number)?;
        for log in index_logs(&block, &receipts, &system_logs) {
            if filter.matches(&log.log) {
                out.push(rpc_log(&log));
                if out.len() > MAX_LOGS {
                    return Err(RpcError::LimitExceeded(format!(
                        "query returned more than {MAX_LOGS} results; narrow the block range"
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// What `eth_getFilterChanges` returns: logs, or block / transaction hashes.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum FilterChanges {
    /// New logs.
    Logs(Vec<Log>),
    /// New block or pending transaction hashes.
    Hashes(Vec<B256>),
}

enum Kind {
    Logs(Box<Filter>),
    Blocks,
    Pending(broadcast::Receiver<B256>),
}

struct Installed {
    kind: Kind,
    /// Last block already reported.
    last_block: u64,
    last_poll: Instant,
}

/// Installed polling filters.
pub struct Filters {
    chain: Arc<Chain>,
    next_id: Mutex<u64>,
    installed: Mutex<BTreeMap<u64, Installed>>,
}

impl Filters {
    /// No filters yet.
    pub fn new(chain: Arc<Chain>) -> Self {
        Self {
            chain,
            next_id: Mutex::new(1),
            installed: Mutex::new(BTreeMap::new()),
        }
    }

    fn install(&self, kind: Kind) -> U256 {
        let mut installed = self.installed.lock();
        installed.retain(|_, f| f.last_poll.elapsed() < FILTER_TIMEOUT);
        let mut next = self.next_id.lock();
        let id = *next;
        *next += 1;
        let last_block = self.chain.head().header.number;
        installed.insert(
            id,
            Installed {
                kind,
                last_block,
                last_poll: Instant::now(),
            },
        );
        U256::from(id)
    }

    /// Installs a log filter.
    pub fn install_logs(&self, filter: Filter) -> U256 {
        self.install(Kind::Logs(Box::new(filter)))
    }

    /// Installs a new-block filter.
    pub fn install_blocks(&self) -> U256 {
        self.install(Kind::Blocks)
    }

    /// Installs a pending-transaction filter.
    pub fn install_pending(&self) -> U256 {
        self.install(Kind::Pending(self.chain.subscribe_pending()))
    }

    /// Removes a filter; false if it did not exist.
    pub fn uninstall(&self, id: U256) -> bool {
        self.installed
            .lock()
            .remove(&id.saturating_to::<u64>())
            .is_some()
    }

    /// Changes since the previous poll.
    pub fn changes(&self, id: U256) -> Result<FilterChanges, RpcError> {
        let mut installed = self.installed.lock();
        let filter = installed
            .get_mut(&id.saturating_to::<u64>())
            .ok_or_else(|| RpcError::NotFound("filter not found".into()))?;
        filter.last_poll = Instant::now();
        let head = self.chain.head().header.number;
        let from = filter.last_block + 1;
        match &mut filter.kind {
            Kind::Blocks => {
                let mut hashes = Vec::new();
                for n in from..=head {
                    if let Some(hash) = self.chain.store().hash_by_number(n)? {
                        hashes.push(hash);
                    }
                }
                filter.last_block = head;
                Ok(FilterChanges::Hashes(hashes))
            }
            Kind::Pending(rx) => {
                let mut hashes = Vec::new();
                loop {
                    match rx.try_recv() {
                        Ok(h) => hashes.push(h),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                Ok(FilterChanges::Hashes(hashes))
            }
            Kind::Logs(f) => {
                if from > head {
                    return Ok(FilterChanges::Logs(Vec::new()));
                }
                // Only the blocks not yet reported, within the filter's own range.
                let mut window = (**f).clone();
                let to = f
                    .block_option
                    .get_to_block()
                    .and_then(|t| t.as_number())
                    .map_or(head, |t| t.min(head));
                let start = f
                    .block_option
                    .get_from_block()
                    .and_then(|t| t.as_number())
                    .map_or(from, |f0| f0.max(from));
                filter.last_block = head;
                if start > to {
                    return Ok(FilterChanges::Logs(Vec::new()));
                }
                window.block_option = FilterBlockOption::Range {
                    from_block: Some(start.into()),
                    to_block: Some(to.into()),
                };
                drop(installed);
                Ok(FilterChanges::Logs(logs_in_range(
                    &self.chain,
                    &window,
                    Some(head),
                )?))
            }
        }
    }

    /// Every log matching a log filter.
    pub fn all_logs(&self, id: U256) -> Result<Vec<Log>, RpcError> {
        let filter = {
            let mut installed = self.installed.lock();
            let f = installed
                .get_mut(&id.saturating_to::<u64>())
                .ok_or_else(|| RpcError::NotFound("filter not found".into()))?;
            f.last_poll = Instant::now();
            match &f.kind {
                Kind::Logs(filter) => (**filter).clone(),
                _ => return Err(RpcError::InvalidParams("filter is not a log filter".into())),
            }
        };
        logs_in_range(&self.chain, &filter, None)
    }
}
