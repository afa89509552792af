//! `eth_feeHistory`: base fees, gas used ratios and priority-fee percentiles.

use alloy_consensus::Transaction as _;
use alloy_rpc_types_eth::FeeHistory;
use noesis_node::{Chain, next_base_fee};

use crate::error::RpcError;

/// Most blocks one `eth_feeHistory` call covers (as geth).
pub const MAX_FEE_HISTORY_BLOCKS: u64 = 1024;

/// Fee history of `count` blocks ending at `newest`.
pub fn fee_history(
    chain: &Chain,
    count: u64,
    newest: u64,
    percentiles: Option<Vec<f64>>,
) -> Result<FeeHistory, RpcError> {
    let head = chain.head().header.number;
    if newest > head {
        return Err(RpcError::InvalidParams(format!(
            "request beyond head block: requested {newest}, head {head}"
        )));
    }
    if let Some(p) = &percentiles
        && (p.iter().any(|x| !(0.0..=100.0).contains(x)) || p.windows(2).any(|w| w[0] > w[1]))
    {
        return Err(RpcError::InvalidParams(
            "invalid reward percentiles: must be ascending values in [0, 100]".into(),
        ));
    }
    let count = count.min(MAX_FEE_HISTORY_BLOCKS).min(newest + 1);
    if count == 0 {
        return Ok(FeeHistory::default());
    }
    let oldest = newest + 1 - count;
    let store = chain.store();
    let mut history = FeeHistory {
        oldest_block: oldest,
        ..Default::default()
    };
    let mut rewards = Vec::new();
    let mut last_header = None;
    for number in oldest..=newest {
        let block = store
            .block_by_number(number)?
            .ok_or_else(|| RpcError::Internal(format!("block {number} missing")))?;
        let header = &block.header;
        let base_fee = header.base_fee_per_gas.unwrap_or_default();
        history.base_fee_per_gas.push(base_fee as u128);
        history
            .gas_used_ratio
            .push(header.gas_used as f64 / header.gas_limit.max(1) as f64);
        history.base_fee_per_blob_gas.push(1);
        history.blob_gas_used_ratio.push(0.0);
        if let Some(percentiles) = &percentiles {
            let receipts = store.receipts(number)?;
            let mut tips: Vec<(u128, u64)> = Vec::new();
            let mut previous = 0;
            for ((_, tx), receipt) in block.transactions.iter().zip(&receipts) {
                let used = receipt.cumulative_gas_used() - previous;
                previous = receipt.cumulative_gas_used();
                tips.push((tx.effective_tip_per_gas(base_fee).unwrap_or_default(), used));
            }
            tips.sort_unstable();
            rewards.push(percentile_rewards(&tips, header.gas_used, percentiles));
        }
        last_header = Some(block.header);
    }
    if let Some(header) = last_header {
        history
            .base_fee_per_gas
            .push(next_base_fee(&header) as u128);
        history.base_fee_per_blob_gas.push(1);
    }
    if percentiles.is_some() {
        history.reward = Some(rewards);
    }
    Ok(history)
}

/// Tips at the given percentiles of gas used, as geth computes them.
fn percentile_rewards(
    sorted_tips: &[(u128, u64)],
    gas_used: u64,
    percentiles: &[f64],
) -> Vec<u128> {
    if sorted_tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    let mut out = Vec::with_capacity(percentiles.len());
    let mut index = 0;
    let mut sum = sorted_tips[0].1;
    for p in percentiles {
        let threshold = (gas_used as f64 * p / 100.0) as u64;
        while sum < threshold && index + 1 < sorted_tips.len() {
            index += 1;
            sum += sorted_tips[index].1;
        }
        out.push(sorted_tips[index].0);
    }
    out
}
