use std::{path::PathBuf, sync::OnceLock};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{TxKind, address, b256, bytes};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use noesis_primitives::{ChainSpec, EMPTY_CODE_HASH, dev_accounts};

use super::*;

const GWEI: u128 = 1_000_000_000;
const RECIPIENT: Address = address!("0x00000000000000000000000000000000000000aa");

/// Keys of the first three dev accounts (derived once: derivation is slow).
fn dev_keys() -> &'static [PrivateKeySigner] {
    static KEYS: OnceLock<Vec<PrivateKeySigner>> = OnceLock::new();
    KEYS.get_or_init(|| {
        dev_accounts(3)
            .iter()
            .map(|a| PrivateKeySigner::from_bytes(&a.private_key).unwrap())
            .collect()
    })
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("noesis-executor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(name: &str) -> Arc<Chain> {
    Chain::open(&fresh_dir(name), ChainSpec::dev(), 1000).unwrap()
}

fn sign(signer: &PrivateKeySigner, tx: TxEip1559) -> TxEnvelope {
    let signature = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
    tx.into_signed(signature).into()
}

fn call(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: TxKind,
    value: u128,
    input: Bytes,
) -> TxEnvelope {
    sign(
        signer,
        TxEip1559 {
            chain_id: noesis_primitives::DEV_CHAIN_ID,
            nonce,
            gas_limit: 200_000,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to,
            value: U256::from(value),
            input,
            ..Default::default()
        },
    )
}

fn transfer(key: usize, nonce: u64, value: u128) -> TxEnvelope {
    call(
        &dev_keys()[key],
        nonce,
        TxKind::Call(RECIPIENT),
        value,
        Bytes::new(),
    )
}

/// Creation code of a counter: the constructor stores 1 in slot 0; every call adds 1.
fn counter_init_code() -> Bytes {
    // Runtime: SLOAD(0) + 1 -> SSTORE(0), STOP.
    // Init: SSTORE(0, 1); CODECOPY(0, 17, 10); RETURN(0, 10).
    bytes!("6001600055600a6011600039600a6000f360005460010160005500")
}

fn proposal_parts(block: &ExecutedBlock) -> (Header, Vec<TxEnvelope>) {
    let proposal = block.proposal();
    (proposal.header, proposal.transactions)
}

#[test]
fn shared_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ExecutedBlock>();
    send_sync::<PendingState>();
    send_sync::<BlockError>();
}

#[test]
fn pending_blocks_verify_and_commit_identically_on_two_nodes() {
    let leader = open("leader");
    let follower = open("follower");
    let keys = dev_keys();
    let counter = keys[0].address().create(0);

    // Block 1: a contract creation (storage slot set) and a transfer.
    leader
        .submit(call(&keys[0], 0, TxKind::Create, 0, counter_init_code()))
        .unwrap();
    leader.submit(transfer(1, 0, 7)).unwrap();
    let b1 = leader.build_block(&[], 1_000).unwrap();
    assert_eq!(b1.block().transactions.len(), 2);
    assert_eq!(b1.number(), 1);

    // Block 2 on pending block 1: what block 1 included stays in the pool and is not
    // included again; the call reads slot 0 as block 1 left it.
    leader
        .submit(call(&keys[0], 1, TxKind::Call(counter), 0, Bytes::new()))
        .unwrap();
    leader.submit(transfer(2, 0, 9)).unwrap();
    let b2 = leader
        .build_block(std::slice::from_ref(&b1), 1_001)
        .unwrap();
    assert_eq!(b2.block().transactions.len(), 2);
    assert!(
        b2.block().transactions.iter().all(|(_, tx)| !b1
            .block()
            .transactions
            .iter()
            .any(|(_, t)| t == tx))
    );
    assert_eq!(leader.pool_status().pending, 4);

    // Block 3 on both: calls the counter again and moves more value.
    leader
        .submit(call(&keys[0], 2, TxKind::Call(counter), 0, Bytes::new()))
        .unwrap();
    leader.submit(transfer(1, 1, 11)).unwrap();
    let ancestors = [b1.clone(), b2.clone()];
    let b3 = leader.build_block(&ancestors, 1_002).unwrap();
    assert_eq!(b3.block().transactions.len(), 2);
    assert_eq!(b3.parent_hash(), b2.hash());

    // The follower re-executes each block on its own pending ancestors.
    let mut verified: Vec<Arc<ExecutedBlock>> = Vec::new();
    for built in [&b1, &b2, &b3] {
        let (header, txs) = proposal_parts(built);
        let block = follower.execute_block(&verified, header, txs).unwrap();
        assert_eq!(block.hash(), built.hash());
        assert_eq!(block.header(), built.header());
        assert_eq!(block.changes(), built.changes());
        assert_eq!(block.receipts(), built.receipts());
        verified.push(block);
    }

    // Finalized in order on both nodes.
    for (built, checked) in [&b1, &b2, &b3].into_iter().zip(&verified) {
        assert!(matches!(
            leader.commit_executed(built).unwrap(),
            CommitOutcome::Committed(_)
        ));
        assert!(matches!(
            follower.commit_executed(checked).unwrap(),
            CommitOutcome::Committed(_)
        ));
    }
    assert_eq!(leader.head().hash, b3.hash());
    assert_eq!(follower.head().hash, b3.hash());
    assert_eq!(leader.head().header.state_root, b3.header().state_root);
    for chain in [&leader, &follower] {
        let state = chain.latest_state();
        assert_eq!(state.storage(counter, U256::ZERO).unwrap(), U256::from(3));
        let recipient = state.account(RECIPIENT).unwrap().unwrap();
        assert_eq!(recipient.balance, U256::from(7 + 9 + 11));
        assert_eq!(recipient.code_hash, EMPTY_CODE_HASH);
    }
    // Committed transactions left the pool.
    assert_eq!(leader.pool_status().pending, 0);

    // Committing again changes nothing.
    assert!(matches!(
        leader.commit_executed(&b1).unwrap(),
        CommitOutcome::AlreadyCommitted
    ));
    assert!(matches!(
        follower.commit_executed(&verified[2]).unwrap(),
        CommitOutcome::AlreadyCommitted
    ));
    assert_eq!(leader.head().hash, b3.hash());

    // Ancestors committed meanwhile are skipped; building below the head is refused.
    let b4 = leader.build_block(&[b1, b2, b3.clone()], 1_003).unwrap();
    assert_eq!(b4.parent_hash(), b3.hash());
    assert!(matches!(
        leader.build_block(&ancestors, 1_003),
        Err(NodeError::NotOnHead { number: 3, .. })
    ));
}

#[test]
fn commit_refuses_gaps_and_conflicts() {
    let a = open("gap-a");
    let b = open("gap-b");
    let a1 = a.build_block(&[], 10).unwrap();
    let a2 = a.build_block(std::slice::from_ref(&a1), 11).unwrap();
    // A gap: block 2 before block 1.
    assert!(matches!(
        a.commit_executed(&a2),
        Err(NodeError::NotOnHead { number: 2, .. })
    ));
    // Another block 1 (other timestamp) is canonical on b.
    let b1 = b.build_block(&[], 20).unwrap();
    assert_ne!(a1.hash(), b1.hash());
    b.commit_executed(&b1).unwrap();
    assert!(matches!(
        b.commit_executed(&a1),
        Err(NodeError::ConflictingBlock { number: 1, .. })
    ));
    // Building on a forked-off ancestor is refused too.
    assert!(matches!(
        b.build_block(std::slice::from_ref(&a1), 30),
        Err(NodeError::ConflictingBlock { .. })
    ));
    assert_eq!(b.head().hash, b1.hash());
}

#[test]
fn tampered_blocks_are_rejected_with_the_specific_error() {
    let leader = open("tamper-leader");
    let follower = open("tamper-follower");
    leader.submit(transfer(0, 0, 5)).unwrap();
    leader.submit(transfer(1, 0, 6)).unwrap();
    let block = leader.build_block(&[], 100).unwrap();
    let (header, txs) = proposal_parts(&block);
    let verify = |header: Header, txs: Vec<TxEnvelope>| follower.execute_block(&[], header, txs);

    let bad_root = B256::repeat_byte(1);
    let err = verify(
        Header {
            state_root: bad_root,
            ..header.clone()
        },
        txs.clone(),
    )
    .unwrap_err();
    assert!(
        matches!(err, BlockError::StateRootMismatch { expected, got } if got == bad_root && expected == header.state_root),
        "{err}"
    );
    let err = verify(
        Header {
            gas_used: header.gas_used + 1,
            ..header.clone()
        },
        txs.clone(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            BlockError::GasUsedMismatch {
                expected: 42_000,
                got: 42_001
            }
        ),
        "{err}"
    );
    let err = verify(
        Header {
            receipts_root: bad_root,
            ..header.clone()
        },
        txs.clone(),
    )
    .unwrap_err();
    assert!(
        matches!(err, BlockError::ReceiptsRootMismatch { .. }),
        "{err}"
    );
    let err = verify(
        Header {
            logs_bloom: Bloom::repeat_byte(1),
            ..header.clone()
        },
        txs.clone(),
    )
    .unwrap_err();
    assert!(matches!(err, BlockError::LogsBloomMismatch), "{err}");
    let err = verify(
        Header {
            parent_hash: bad_root,
            ..header.clone()
        },
        txs.clone(),
    )
    .unwrap_err();
    assert!(matches!(err, BlockError::BadParent { .. }), "{err}");
    // The parent's timestamp again is allowed (several blocks may share a second
    // under consensus); an earlier one is not.
    verify(
        Header {
            timestamp: 0,
            ..header.clone()
        },
        txs.clone(),
    )
    .expect("a block may share its parent's second");
    let verified = verify(header.clone(), txs.clone()).unwrap();
    let child = leader
        .build_block(std::slice::from_ref(&block), 100)
        .unwrap();
    let err = follower
        .execute_block(
            &[verified],
            Header {
                timestamp: 99,
                ..child.header().clone()
            },
            vec![],
        )
        .unwrap_err();
    assert!(matches!(err, BlockError::BadTimestamp { .. }), "{err}");
    let err = verify(
        Header {
            base_fee_per_gas: Some(1),
            ..header.clone()
        },
        txs.clone(),
    )
    .unwrap_err();
    assert!(matches!(err, BlockError::BadBaseFee { .. }), "{err}");
    let err = verify(
        Header {
            extra_data: bytes!("01"),
            ..header.clone()
        },
        txs.clone(),
    )
    .unwrap_err();
    assert!(
        matches!(err, BlockError::BadHeaderField("extra_data")),
        "{err}"
    );
    let err = verify(header.clone(), txs[..1].to_vec()).unwrap_err();
    assert!(
        matches!(err, BlockError::TransactionsRootMismatch { .. }),
        "{err}"
    );
    assert!(err.is_invalid_block());

    // One byte of a transaction flipped on the wire (in its recipient): the block
    // still decodes, and is refused for its transactions root...
    let mut raw = block.proposal().encode();
    let at = raw
        .windows(20)
        .position(|w| w == RECIPIENT.as_slice())
        .unwrap();
    raw[at + 19] ^= 0x01;
    let decoded = ProposedBlock::decode(&raw, raw.len()).unwrap();
    assert_ne!(decoded.transactions, txs);
    let err = verify(decoded.header.clone(), decoded.transactions.clone()).unwrap_err();
    assert!(
        matches!(err, BlockError::TransactionsRootMismatch { .. }),
        "{err}"
    );
    // ... and, with a root that matches, for its sender: the signature now recovers
    // another, unfunded, account.
    let forged = Header {
        transactions_root: calculate_transaction_root(&decoded.transactions),
        ..decoded.header
    };
    let err = verify(forged, decoded.transactions).unwrap_err();
    assert!(
        matches!(err, BlockError::InvalidTransaction { index: 0, .. }),
        "{err}"
    );

    // The untampered block passes.
    let ok = verify(header, txs).unwrap();
    assert_eq!(ok.hash(), block.hash());
}

#[test]
fn a_transaction_of_a_pending_ancestor_is_invalid_in_its_child() {
    let leader = open("replay-leader");
    let follower = open("replay-follower");
    leader.submit(transfer(0, 0, 5)).unwrap();
    let b1 = leader.build_block(&[], 100).unwrap();
    let v1 = follower
        .execute_block(&[], b1.header().clone(), b1.proposal().transactions)
        .unwrap();
    // Block 2 replays block 1's transaction, with a header that is otherwise right.
    let b2 = leader.build_block(std::slice::from_ref(&b1), 101).unwrap();
    assert!(b2.block().transactions.is_empty());
    let replayed = b1.proposal().transactions;
    let header = Header {
        transactions_root: calculate_transaction_root(&replayed),
        ..b2.header().clone()
    };
    let err = follower.execute_block(&[v1], header, replayed).unwrap_err();
    assert!(
        matches!(&err, BlockError::InvalidTransaction { index: 0, reason } if reason.contains("nonce")),
        "{err}"
    );
    // The leader's pool still holds the transaction until block 1 is committed.
    assert_eq!(leader.pool_status().pending, 1);
    leader.commit_executed(&b1).unwrap();
    assert_eq!(leader.pool_status().pending, 0);
}

#[test]
fn wire_round_trip_of_a_built_block() {
    let chain = open("wire");
    chain.submit(transfer(0, 0, 1)).unwrap();
    chain
        .submit(call(
            &dev_keys()[1],
            0,
            TxKind::Create,
            0,
            counter_init_code(),
        ))
        .unwrap();
    let block = chain.build_block(&[], 5).unwrap();
    let proposal = block.proposal();
    let raw = proposal.encode();
    let decoded = ProposedBlock::decode(&raw, 1 << 20).unwrap();
    assert_eq!(decoded, proposal);
    assert_eq!(decoded.hash(), block.hash());
}

#[test]
fn produce_block_keeps_the_dev_behaviour() {
    let chain = open("produce");
    let genesis = chain.head().hash;
    // Nothing executable and empty blocks not wanted: nothing written.
    assert!(chain.produce_block(100, false).unwrap().is_none());
    assert_eq!(chain.head().hash, genesis);

    // Fund a fresh account with 1 ETH.
    let poor = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).unwrap();
    let eth = 1_000_000_000_000_000_000u128;
    chain
        .submit(call(
            &dev_keys()[0],
            0,
            TxKind::Call(poor.address()),
            eth,
            Bytes::new(),
        ))
        .unwrap();
    let block = chain.produce_block(100, false).unwrap().unwrap();
    assert_eq!(block.header.number, 1);
    assert_eq!(chain.head().hash, block.hash);

    // Two spends of 0.9 ETH each pass the pool's checks; the second is invalid at
    // execution and is dropped from the pool.
    let spend = |nonce| {
        call(
            &poor,
            nonce,
            TxKind::Call(RECIPIENT),
            eth / 10 * 9,
            Bytes::new(),
        )
    };
    chain.submit(spend(0)).unwrap();
    chain.submit(spend(1)).unwrap();
    let block = chain.produce_block(101, false).unwrap().unwrap();
    assert_eq!(block.header.number, 2);
    let stored = chain.block_with_receipts(2).unwrap().unwrap();
    assert_eq!(stored.block.transactions.len(), 1);
    assert_eq!(chain.pool_status().pending + chain.pool_status().queued, 0);

    // An empty block when asked for one; the timestamp never goes backwards.
    let block = chain.produce_block(0, true).unwrap().unwrap();
    assert_eq!(block.header.number, 3);
    assert_eq!(block.header.timestamp, 102);
}

/// A state with one account holding slots 1 and 2.
struct Base;

const ACCOUNT: Address = address!("0x0000000000000000000000000000000000000011");

impl StateView for Base {
    fn account(&self, address: Address) -> Result<Option<AccountState>, StateError> {
        Ok((address == ACCOUNT).then(|| AccountState {
            nonce: 1,
            ..Default::default()
        }))
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        Ok(if address == ACCOUNT && slot <= U256::from(2) {
            slot * U256::from(100)
        } else {
            U256::ZERO
        })
    }
    fn code(&self, _: B256) -> Result<Bytes, StateError> {
        Ok(Bytes::new())
    }
    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        Ok(B256::with_last_byte(number as u8))
    }
}

fn change(nonce: Option<u64>, reset: bool, slots: &[(u64, u64)]) -> StateChanges {
    StateChanges {
        accounts: BTreeMap::from([(
            ACCOUNT,
            AccountChange {
                account: nonce.map(|n| (n, U256::ZERO, EMPTY_CODE_HASH)),
                storage_reset: reset,
                storage: slots
                    .iter()
                    .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                    .collect(),
            },
        )]),
        codes: BTreeMap::new(),
    }
}

fn pending_over(changes: &[StateChanges]) -> PendingState {
    let mut merged = StateChanges::default();
    for c in changes {
        merge_changes(&mut merged, c);
    }
    PendingState {
        base: Arc::new(Base),
        changes: merged,
        hashes: BTreeMap::from([(5, B256::repeat_byte(5))]),
    }
}

#[test]
fn merge_later_values_win_and_slots_accumulate() {
    let code_a = b256!("0x00000000000000000000000000000000000000000000000000000000000000a1");
    let mut first = change(Some(2), false, &[(1, 7), (3, 9)]);
    first.codes.insert(code_a, bytes!("60"));
    let state = pending_over(&[first, change(Some(3), false, &[(1, 8)])]);
    let merged = &state.changes().accounts[&ACCOUNT];
    assert_eq!(merged.account.map(|a| a.0), Some(3));
    assert!(!merged.storage_reset);
    assert_eq!(
        state.storage(ACCOUNT, U256::from(1)).unwrap(),
        U256::from(8)
    );
    assert_eq!(
        state.storage(ACCOUNT, U256::from(2)).unwrap(),
        U256::from(200)
    );
    assert_eq!(
        state.storage(ACCOUNT, U256::from(3)).unwrap(),
        U256::from(9)
    );
    assert_eq!(state.code(code_a).unwrap(), bytes!("60"));
    assert_eq!(state.pending_nonce(&ACCOUNT), Some(3));
    assert_eq!(state.pending_nonce(&RECIPIENT), None);
    // Pending blocks answer BLOCKHASH; the rest comes from the committed chain.
    assert_eq!(state.block_hash(5).unwrap(), B256::repeat_byte(5));
    assert_eq!(state.block_hash(4).unwrap(), B256::with_last_byte(4));
}

#[test]
fn merge_storage_reset_wipes_earlier_slots() {
    // Slot 1 changed, then the account recreated (reset) with only slot 3.
    let state = pending_over(&[
        change(Some(2), false, &[(1, 7)]),
        change(Some(1), true, &[(3, 9)]),
    ]);
    let merged = &state.changes().accounts[&ACCOUNT];
    assert!(merged.storage_reset);
    assert_eq!(
        merged.storage,
        BTreeMap::from([(U256::from(3), U256::from(9))])
    );
    // Neither the earlier pending slot nor the committed ones show through.
    assert_eq!(state.storage(ACCOUNT, U256::from(1)).unwrap(), U256::ZERO);
    assert_eq!(state.storage(ACCOUNT, U256::from(2)).unwrap(), U256::ZERO);
    assert_eq!(
        state.storage(ACCOUNT, U256::from(3)).unwrap(),
        U256::from(9)
    );

    // A reset stays in force when later blocks change slots without one.
    let state = pending_over(&[
        change(Some(1), true, &[(3, 9)]),
        change(Some(2), false, &[(4, 1)]),
    ]);
    let merged = &state.changes().accounts[&ACCOUNT];
    assert!(merged.storage_reset);
    assert_eq!(merged.storage.len(), 2);
    assert_eq!(state.storage(ACCOUNT, U256::from(2)).unwrap(), U256::ZERO);

    // A deleted account loses its storage: recreated later, it starts empty.
    let state = pending_over(&[
        change(Some(2), false, &[(1, 7)]),
        change(None, false, &[(1, 8)]),
    ]);
    assert_eq!(state.account(ACCOUNT).unwrap(), None);
    assert_eq!(state.storage(ACCOUNT, U256::from(1)).unwrap(), U256::ZERO);
    let state = pending_over(&[change(None, false, &[]), change(Some(1), false, &[(4, 1)])]);
    let merged = &state.changes().accounts[&ACCOUNT];
    assert!(merged.storage_reset);
    assert_eq!(state.storage(ACCOUNT, U256::from(1)).unwrap(), U256::ZERO);
    assert_eq!(
        state.storage(ACCOUNT, U256::from(4)).unwrap(),
        U256::from(1)
    );
}

#[test]
fn a_block_over_the_byte_limit_is_refused_before_execution() {
    let leader = open("bytes-leader");
    let follower = open("bytes-follower");
    let block = leader.build_block(&[], 100).unwrap();
    let big = call(
        &dev_keys()[0],
        0,
        TxKind::Call(RECIPIENT),
        0,
        Bytes::from(vec![1u8; 120 * 1024]),
    );
    let copies = MAX_BLOCK_TRANSACTION_BYTES / big.encode_2718_len() + 1;
    let err = follower
        .execute_block(&[], block.header().clone(), vec![big; copies])
        .unwrap_err();
    assert!(matches!(err, BlockError::TooLarge { .. }), "{err}");
}
