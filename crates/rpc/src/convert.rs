//! Builds the JSON-RPC shapes of blocks, transactions, receipts and logs from what
//! the store holds.

use alloy_consensus::{Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, U256};
use alloy_rpc_types_eth::{
    Block, BlockTransactions, Header as RpcHeader, Log, Transaction, TransactionReceipt,
};
use noesis_node::{BlockWithReceipts, IndexedLog};
use noesis_storage::StoredBlock;

/// An RPC transaction, mined (with its block position) or pending.
pub fn rpc_transaction(
    sender: Address,
    tx: TxEnvelope,
    block: Option<(&StoredBlock, u64)>,
) -> Transaction {
    let (block_hash, block_number, transaction_index, effective_gas_price, block_timestamp) =
        match block {
            Some((b, index)) => (
                Some(b.hash),
                Some(b.header.number),
                Some(index),
                Some(tx.effective_gas_price(b.header.base_fee_per_gas)),
                Some(b.header.timestamp),
            ),
            None => (None, None, None, None, None),
        };
    Transaction {
        inner: Recovered::new_unchecked(tx, sender),
        block_hash,
        block_number,
        transaction_index,
        effective_gas_price,
        block_timestamp,
    }
}

/// An RPC block with transaction hashes or full transactions.
pub fn rpc_block(block: &StoredBlock, full: bool) -> Block {
    let size = alloy_rlp::encode(&block.header).len()
        + block
            .transactions
            .iter()
            .map(|(_, tx)| alloy_eips::eip2718::Encodable2718::encode_2718_len(tx))
            .sum::<usize>();
    let transactions = if full {
        BlockTransactions::Full(
            block
                .transactions
                .iter()
                .enumerate()
                .map(|(i, (sender, tx))| {
                    rpc_transaction(*sender, tx.clone(), Some((block, i as u64)))
                })
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(
            block
                .transactions
                .iter()
                .map(|(_, tx)| *tx.tx_hash())
                .collect(),
        )
    };
    Block {
        header: RpcHeader {
            hash: block.hash,
            inner: block.header.clone(),
            total_difficulty: Some(U256::ZERO),
            size: Some(U256::from(size)),
        },
        uncles: Vec::new(),
        transactions,
        withdrawals: Some(Default::default()),
    }
}

/// An RPC log with its position.
pub fn rpc_log(log: &IndexedLog) -> Log {
    Log {
        inner: log.log.clone(),
        block_hash: Some(log.block_hash),
        block_number: Some(log.block_number),
        block_timestamp: Some(log.block_timestamp),
        transaction_hash: Some(log.tx_hash),
        transaction_index: Some(log.tx_index),
        log_index: Some(log.log_index),
        removed: false,
    }
}

/// The receipt of the transaction at `index` in `block`.
pub fn rpc_receipt(data: &BlockWithReceipts, index: usize) -> Option<TransactionReceipt> {
    let block = &data.block;
    let receipt = data.receipts.get(index)?;
    let (sender, tx) = block.transactions.get(index)?;
    let previous_cumulative = match index.checked_sub(1) {
        None => 0,
        Some(previous) => data.receipts.get(previous)?.cumulative_gas_used(),
    };
    let tx_hash = *tx.tx_hash();
    // The receipt's logs with their positions, built the same way as for eth_getLogs.
    let mut log_index = *data.first_log_index.get(index)?;
    let inner = receipt.clone().map_logs(|log| {
        let positioned = rpc_log(&IndexedLog {
            log,
            block_number: block.header.number,
            block_hash: block.hash,
            block_timestamp: block.header.timestamp,
            tx_hash,
            tx_index: index as u64,
            log_index,
        });
        log_index += 1;
        positioned
    });
    let contract_address = tx.to().is_none().then(|| sender.create(tx.nonce()));
    Some(TransactionReceipt {
        inner,
        transaction_hash: tx_hash,
        transaction_index: Some(index as u64),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        gas_used: receipt.cumulative_gas_used() - previous_cumulative,
        effective_gas_price: tx.effective_gas_price(block.header.base_fee_per_gas),
        blob_gas_used: None,
        blob_gas_price: None,
        from: *sender,
        to: tx.to(),
        contract_address,
    })
}
