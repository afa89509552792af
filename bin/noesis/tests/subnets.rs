//! The subnets module through JSON-RPC on a real `noesis dev`: a subnet is created,
//! neurons register, a validator stakes, commits and reveals weights, blocks pass a
//! tempo, and `noesis_metagraph` shows who was paid and why the others were not.

mod common;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use common::{DevNode, dev_signer, eip1559, sign};
use noesis_execution::modules::subnets::{
    NEURON_ADDRESS, STAKING_ADDRESS, SUBNET_ADDRESS,
    interface::{INeuron, INoesisSubnets, ISubnet},
    state::Param,
    weights::commit_hash,
};
use serde_json::{Value, json};

struct Chain {
    node: DevNode,
}

impl Chain {
    fn view<C: SolCall>(&self, to: Address, call: C) -> C::Return {
        let out = self.node.call(
            "eth_call",
            json!([{"to": to, "data": Bytes::from(call.abi_encode())}, "latest"]),
        );
        let bytes: Bytes = serde_json::from_value(out).unwrap();
        C::abi_decode_returns(&bytes).unwrap()
    }

    fn nonce(&self, who: Address) -> u64 {
        self.node
            .quantity("eth_getTransactionCount", json!([who, "latest"])) as u64
    }

    /// Sends a call and waits for its receipt; returns the receipt.
    fn send(&self, from: &PrivateKeySigner, to: Address, value: U256, data: Vec<u8>) -> Value {
        let raw = sign(
            from,
            eip1559(
                self.nonce(from.address()),
                Some(to),
                value,
                data.into(),
                3_000_000,
            ),
        );
        let hash = self.node.call("eth_sendRawTransaction", json!([raw]));
        self.node.receipt(hash.as_str().unwrap())
    }

    fn send_ok(&self, from: &PrivateKeySigner, to: Address, value: U256, data: Vec<u8>) {
        let receipt = self.send(from, to, value, data.clone());
        if receipt["status"] != "0x1" {
            // Replay it as a call for the revert reason.
            let why = self.node.try_call(
                "eth_call",
                json!([{"from": from.address(), "to": to, "value": value, "data": Bytes::from(data)}, "latest"]),
            );
            panic!("call to {to} failed: {why:?}");
        }
    }

    fn block(&self) -> u64 {
        self.node.quantity("eth_blockNumber", json!([])) as u64
    }

    /// Mines one block (a self-transfer).
    fn tick(&self, who: &PrivateKeySigner) {
        self.send_ok(who, who.address(), U256::ZERO, Vec::new());
    }
}

fn epoch_index(netuid: u16, tempo: u64, block: u64) -> u64 {
    (block + u64::from(netuid) + 1) / (tempo + 1)
}

#[test]
fn a_subnet_pays_the_weighted_miner_and_says_why_others_earned_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain {
        node: DevNode::start(dir.path(), &[]),
    };
    let (owner, validator, miner, idle) =
        (dev_signer(0), dev_signer(1), dev_signer(2), dev_signer(3));
    let hotkey = |s: &PrivateKeySigner| s.address().into_word();

    // Create the subnet, paying the lock cost.
    let lock = chain.view(SUBNET_ADDRESS, INoesisSubnets::getLockCostCall {});
    chain.send_ok(
        &owner,
        SUBNET_ADDRESS,
        lock,
        ISubnet::registerNetwork_0Call {
            hotkey: hotkey(&owner),
        }
        .abi_encode(),
    );
    let netuid = chain.view(SUBNET_ADDRESS, INoesisSubnets::networkCountCall {});
    assert!(netuid >= 1);
    let tempo = 4u64;
    chain.send_ok(
        &owner,
        SUBNET_ADDRESS,
        U256::ZERO,
        INoesisSubnets::setHyperparameterCall {
            netuid,
            param: Param::Tempo as u8,
            value: U256::from(tempo),
        }
        .abi_encode(),
    );
    // Only the owner may set hyperparameters: the revert reason reaches the client.
    let denied = chain.send(
        &validator,
        SUBNET_ADDRESS,
        U256::ZERO,
        INoesisSubnets::setHyperparameterCall {
            netuid,
            param: Param::Tempo as u8,
            value: U256::from(9),
        }
        .abi_encode(),
    );
    assert_eq!(denied["status"], "0x0");

    // Register a validator and two miners, paying the burn.
    for who in [&validator, &miner, &idle] {
        let burn = chain.view(SUBNET_ADDRESS, INoesisSubnets::getBurnCall { netuid });
        chain.send_ok(
            who,
            NEURON_ADDRESS,
            burn,
            INeuron::burnedRegisterCall {
                netuid,
                hotkey: hotkey(who),
            }
            .abi_encode(),
        );
    }
    // The validator stakes 10 native through the pool.
    chain.send_ok(
        &validator,
        STAKING_ADDRESS,
        U256::from(10u64) * U256::from(10u64).pow(U256::from(18)),
        INoesisSubnets::addStakeWeiCall {
            hotkey: hotkey(&validator),
            netuid,
            limitPrice: U256::MAX,
            allowPartial: false,
        }
        .abi_encode(),
    );
    let metagraph = chain.node.call("noesis_metagraph", json!([netuid]));
    let neurons = metagraph["neurons"].as_array().unwrap().clone();
    let uid_of = |s: &PrivateKeySigner| {
        neurons
            .iter()
            .find(|n| {
                n["coldkey"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(&s.address().to_string())
            })
            .map(|n| n["uid"].as_u64().unwrap() as u16)
            .unwrap()
    };
    let (v_uid, m_uid, idle_uid) = (uid_of(&validator), uid_of(&miner), uid_of(&idle));

    // Setting weights directly is refused while commit-reveal is on (the default).
    let direct = chain.send(
        &validator,
        NEURON_ADDRESS,
        U256::ZERO,
        INeuron::setWeightsCall {
            netuid,
            dests: vec![m_uid],
            weights: vec![65535],
            versionKey: 0,
        }
        .abi_encode(),
    );
    assert_eq!(direct["status"], "0x0");

    // Commit, wait for the reveal epoch, reveal.
    let (uids, values, salt) = (vec![m_uid], vec![65535u16], vec![7u16, 11, 13]);
    let hash: B256 = commit_hash(validator.address(), netuid, &uids, &values, &salt, 0);
    chain.send_ok(
        &validator,
        NEURON_ADDRESS,
        U256::ZERO,
        INeuron::commitWeightsCall {
            netuid,
            commitHash: hash,
        }
        .abi_encode(),
    );
    let committed = epoch_index(netuid, tempo, chain.block());
    // Each transaction is mined in its own block; the reveal lands in the next block.
    while epoch_index(netuid, tempo, chain.block() + 1) < committed + 1 {
        chain.tick(&owner);
    }
    chain.send_ok(
        &validator,
        NEURON_ADDRESS,
        U256::ZERO,
        INeuron::revealWeightsCall {
            netuid,
            uids,
            values,
            salt,
            versionKey: 0,
        }
        .abi_encode(),
    );
    // Pass two more epochs so the revealed weights are used and paid.
    let revealed = epoch_index(netuid, tempo, chain.block());
    while epoch_index(netuid, tempo, chain.block()) < revealed + 2 {
        chain.tick(&owner);
    }

    let miner_view = chain.node.call("noesis_neuron", json!([netuid, m_uid]));
    assert!(
        miner_view["incentive"].as_u64().unwrap() > 0,
        "{miner_view}"
    );
    let emission: U256 = serde_json::from_value(miner_view["emission"].clone()).unwrap();
    assert!(emission > U256::ZERO, "{miner_view}");
    assert_eq!(miner_view["reason"], "earned");
    // The metagraph precompile agrees with RPC.
    let incentive = chain.view(
        noesis_execution::modules::subnets::METAGRAPH_ADDRESS,
        noesis_execution::modules::subnets::interface::IMetagraph::getIncentiveCall {
            netuid,
            uid: m_uid,
        },
    );
    assert_eq!(
        u64::from(incentive),
        miner_view["incentive"].as_u64().unwrap()
    );

    let idle_view = chain.node.call("noesis_neuron", json!([netuid, idle_uid]));
    assert_eq!(idle_view["incentive"], 0);
    assert_ne!(idle_view["reason"], "earned", "{idle_view}");
    let validator_view = chain.node.call("noesis_neuron", json!([netuid, v_uid]));
    assert_eq!(validator_view["validatorPermit"], true, "{validator_view}");
    assert!(
        validator_view["dividends"].as_u64().unwrap() > 0,
        "{validator_view}"
    );

    // The epoch's events (from the end-of-block system call) are served by eth_getLogs
    // under the block's system transaction hash, and agree with the metagraph.
    use alloy_sol_types::SolEvent;
    use noesis_execution::modules::subnets::interface::events::NeuronEmission;
    let logs = chain.node.call(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "latest", "address": SUBNET_ADDRESS,
                "topics": [NeuronEmission::SIGNATURE_HASH]}]),
    );
    let logs = logs.as_array().unwrap();
    assert!(!logs.is_empty(), "no NeuronEmission logs");
    for log in logs {
        let block_hash: B256 = serde_json::from_value(log["blockHash"].clone()).unwrap();
        let tx_hash: B256 = serde_json::from_value(log["transactionHash"].clone()).unwrap();
        assert_eq!(tx_hash, noesis_node::chain::system_tx_hash(block_hash));
    }
    let last_for_miner = logs
        .iter()
        .rev()
        .find(|l| l["topics"][2] == json!(B256::from(U256::from(m_uid))))
        .expect("an emission event for the miner");
    let data: Bytes = serde_json::from_value(last_for_miner["data"].clone()).unwrap();
    let topics: Vec<B256> = serde_json::from_value(last_for_miner["topics"].clone()).unwrap();
    let event = NeuronEmission::decode_raw_log(topics, &data).unwrap();
    assert_eq!(event.incentiveAlpha + event.dividendAlpha, emission);

    // Unknown subnets and uids are clear errors.
    let err = chain
        .node
        .try_call("noesis_metagraph", json!([999]))
        .unwrap_err();
    assert!(
        err["message"].as_str().unwrap().contains("does not exist"),
        "{err}"
    );
    let err = chain
        .node
        .try_call("noesis_neuron", json!([netuid, 200]))
        .unwrap_err();
    assert!(
        err["message"].as_str().unwrap().contains("does not exist"),
        "{err}"
    );
}

fn noesis(args: &[&str], rpc: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_noesis"))
        .args(args)
        .args(["--rpc", rpc])
        .output()
        .unwrap()
}

#[test]
fn btcli_style_commands_drive_a_subnet() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path(), &[]);
    let ok = |args: &[&str]| -> Value {
        let out = noesis(args, &node.url);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let created = ok(&["subnet", "create"]);
    let netuid = created["netuid"].to_string();
    ok(&[
        "subnet", "set", "--netuid", &netuid, "--param", "tempo", "--value", "7",
    ]);
    let params = ok(&["subnet", "hyperparams", "--netuid", &netuid]);
    assert_eq!(params["tempo"], "7");
    assert_eq!(params["commit_reveal_enabled"], "1");
    let miner_key = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
    let registered = ok(&[
        "neuron", "register", "--netuid", &netuid, "--key", miner_key,
    ]);
    assert_eq!(registered["uid"], 0);
    ok(&[
        "neuron", "serve", "--netuid", &netuid, "--ip", "10.1.2.3", "--port", "8091", "--key",
        miner_key,
    ]);
    ok(&[
        "stake", "add", "--netuid", &netuid, "--amount", "1ether", "--key", miner_key,
    ]);
    // A key file that holds no key is a clear error.
    let bad_key = std::env::temp_dir().join(format!("noesis-bad-key-{}", std::process::id()));
    std::fs::write(&bad_key, "not a key").unwrap();
    let out = noesis(
        &[
            "stake",
            "add",
            "--netuid",
            &netuid,
            "--amount",
            "1ether",
            "--keyfile",
            bad_key.to_str().unwrap(),
        ],
        &node.url,
    );
    let _ = std::fs::remove_file(&bad_key);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must hold a 32-byte private key"),
        "{out:?}"
    );
    let metagraph = ok(&["subnet", "metagraph", "--netuid", &netuid]);
    let uid0 = &metagraph["neurons"][0];
    assert_eq!(uid0["axon"]["ip"], "10.1.2.3");
    let stake: U256 = serde_json::from_value(uid0["stake"].clone()).unwrap();
    assert!(stake > U256::ZERO);
    let listed = ok(&["subnet", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["netuid"] == created["netuid"])
    );

    // Refusals are clear and exit non-zero: direct weights under commit-reveal, a
    // hyperparameter that does not exist, a subnet that does not exist.
    let out = noesis(
        &[
            "weights",
            "set",
            "--netuid",
            &netuid,
            "--uids",
            "0",
            "--weights",
            "1",
            "--key",
            miner_key,
        ],
        &node.url,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("commit-reveal"));
    let out = noesis(
        &[
            "subnet", "set", "--netuid", &netuid, "--param", "speed", "--value", "1",
        ],
        &node.url,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown hyperparameter"));
    let out = noesis(&["subnet", "metagraph", "--netuid", "77"], &node.url);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
