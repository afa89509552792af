//! Four validators on loopback over authenticated TCP (commonware's tokio runtime, one
//! thread each), with their own stores: transfers sent to one validator are gossiped,
//! ordered, executed and committed identically by all.

use std::{
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use commonware_cryptography::{Signer, ed25519::PrivateKey};
use commonware_utils::ordered::Set;
use futures::executor::block_on;
use noesis_consensus::{
    Certified, Follower, Timeouts,
    network::{NetworkConfig, spawn_validator},
};
use noesis_node::Chain;
use noesis_primitives::{ChainSpec, DEV_CHAIN_ID, StateView, dev_accounts};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn transfer(key: &PrivateKeySigner, nonce: u64) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: DEV_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::repeat_byte(0x42)),
        value: U256::from(1u64),
        ..Default::default()
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    tx.into_signed(signature).into()
}

#[test]
fn four_validators_on_loopback_commit_the_same_chain() {
    let base = std::env::temp_dir().join(format!("noesis-loopback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let keys: Vec<PrivateKey> = (0..4).map(|i| PrivateKey::from_seed(100 + i)).collect();
    let addresses: Vec<SocketAddr> = (0..4)
        .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
        .collect();
    let validators: Vec<_> = keys
        .iter()
        .map(|k| k.public_key())
        .zip(addresses.iter().copied())
        .collect();
    let mut chains: Vec<Arc<Chain>> = Vec::new();
    let mut statuses = Vec::new();
    let mut archives = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let dir = base.join(format!("node-{i}"));
        let chain = Chain::open(&dir.join("chain"), ChainSpec::dev(), 10_000).expect("opens");
        let started = Instant::now();
        let handle = spawn_validator(
            NetworkConfig {
                key: key.clone(),
                listen: addresses[i],
                validators: validators.clone(),
                namespace: b"noesis-loopback".to_vec(),
                storage_dir: dir.join("consensus"),
                timeouts: Timeouts::default(),
            },
            chain.clone(),
        )
        .expect("validator starts");
        if std::env::var("NOESIS_TRACE").is_ok() {
            eprintln!("validator {i} started in {:?}", started.elapsed());
        }
        chains.push(chain);
        statuses.push(handle.status);
        archives.push(handle.archive);
    }
    let sender = PrivateKeySigner::from_bytes(&dev_accounts(1)[0].private_key).expect("key");
    for nonce in 0..20 {
        chains[0].submit(transfer(&sender, nonce)).expect("pooled");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let included = |chain: &Chain| {
        chain
            .latest_state()
            .account(Address::repeat_byte(0x42))
            .ok()
            .flatten()
            .map(|a| a.balance)
            .unwrap_or_default()
    };
    while chains.iter().any(|c| included(c) < U256::from(20u64)) {
        assert!(
            Instant::now() < deadline,
            "transfers not committed everywhere: heights {:?}",
            chains
                .iter()
                .map(|c| c.head().header.number)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
        if std::env::var("NOESIS_TRACE").is_ok() {
            eprintln!(
                "{:?} heights {:?} view {}",
                Instant::now(),
                chains
                    .iter()
                    .map(|c| c.head().header.number)
                    .collect::<Vec<_>>(),
                statuses[0].view()
            );
        }
    }
    let common = chains
        .iter()
        .map(|c| c.head().header.number)
        .min()
        .expect("four");
    for number in 0..=common {
        let hashes: Vec<_> = chains
            .iter()
            .map(|c| c.store().hash_by_number(number).expect("reads"))
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "fork at {number}: {hashes:?}"
        );
    }
    let status = statuses[0].to_json();
    assert_eq!(status["validators"].as_array().map(Vec::len), Some(4));
    assert!(status["view"].as_u64().unwrap_or(0) > 0, "{status}");
    assert!(
        !status["peers"].as_array().expect("peers").is_empty(),
        "{status}"
    );

    // A follower replays the finalized chain from a validator's archive, checking every
    // run against the validator set, and reaches the same blocks and state.
    let set = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
    let follower_chain =
        |name: &str| Chain::open(&base.join(name), ChainSpec::dev(), 10_000).expect("opens");
    let follower = Follower::new(follower_chain("follower"), b"noesis-loopback", set.clone());
    let latest = block_on(archives[1].latest()).expect("a finalized block");
    assert!(latest >= 1);
    while follower.chain().head().header.number < latest {
        let from = follower.chain().head().header.number + 1;
        let run = block_on(archives[1].range(from, 8));
        assert!(!run.is_empty(), "the archive has block {from}");
        follower.apply(&run).expect("a valid run commits");
    }
    let number = follower.chain().head().header.number;
    let theirs = chains[1]
        .store()
        .header_by_number(number)
        .expect("reads")
        .expect("has it");
    assert_eq!(follower.chain().head().header, theirs);
    assert!(
        follower
            .apply(&block_on(archives[0].range(number + 1, 8)))
            .is_ok()
    );

    // Falsified runs commit nothing and say what is wrong.
    // A run whose certificate is above its first block (the chain keeps finalizing
    // empty blocks, so one comes).
    let (run, certified) = loop {
        let run = block_on(archives[0].range(1, 64));
        match run.iter().rposition(|c| c.finalization.is_some()) {
            Some(certified) if certified >= 1 => break (run, certified),
            _ => {
                assert!(Instant::now() < deadline, "no certificate above block 1");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    if let Ok(dir) = std::env::var("NOESIS_WRITE_FUZZ_SEEDS") {
        // A seed of the consensus_message fuzz target: a real certificate (selector 3).
        let mut seed = vec![3u8];
        seed.extend(run[certified].finalization.as_deref().unwrap_or_default());
        std::fs::write(format!("{dir}/finalization"), seed).expect("writes the seed");
    }
    let fresh = Follower::new(follower_chain("fresh"), b"noesis-loopback", set.clone());
    let refuse = |follower: &Follower, run: &[Certified]| -> String {
        let err = follower.apply(run).expect_err("refused");
        assert_eq!(
            follower.chain().head().header.number,
            0,
            "nothing committed"
        );
        err.to_string()
    };
    let mut forged = run[..=certified].to_vec();
    let cert = forged[certified]
        .finalization
        .as_mut()
        .expect("certificate");
    let last = cert.len() - 1;
    cert[last] ^= 1;
    let err = refuse(&fresh, &forged);
    assert!(err.contains("not signed by a quorum"), "{err}");

    let strangers =
        Set::from_iter_dedup((0..4).map(|i| PrivateKey::from_seed(900 + i).public_key()));
    let outsider = Follower::new(follower_chain("outsider"), b"noesis-loopback", strangers);
    let err = refuse(&outsider, &run[..=certified]);
    assert!(err.contains("not signed by a quorum"), "{err}");
    let other_chain = Follower::new(follower_chain("other-chain"), b"another-chain", set.clone());
    let err = refuse(&other_chain, &run[..=certified]);
    assert!(err.contains("not signed by a quorum"), "{err}");

    let mut moved = run[..certified].to_vec();
    moved.last_mut().expect("one").finalization = run[certified].finalization.clone();
    let err = refuse(&fresh, &moved);
    assert!(err.contains("finalizes another block"), "{err}");
    let err = refuse(&fresh, &run[1..=certified]);
    assert!(err.contains("expected 1"), "{err}");
    let mut garbled = run[..=certified].to_vec();
    garbled[0].block.truncate(10);
    let err = refuse(&fresh, &garbled);
    assert!(err.contains("not a valid block encoding"), "{err}");
    let uncertified: Vec<Certified> = run
        .iter()
        .map(|c| Certified {
            block: c.block.clone(),
            finalization: None,
        })
        .collect();
    assert_eq!(fresh.apply(&uncertified).expect("nothing to check"), 0);
    assert!(fresh.apply(&run).expect("the real run commits") > 0);
    let _ = std::fs::remove_dir_all(&base);
}
