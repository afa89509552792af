//! The inference market end to end: `noesis dev` with its two honest miners, validator
//! and gateway, plus a cheating miner that serves a perturbed copy of the model (a GGUF
//! whose tensors `scripts/adversaries.sh` edited: layer 10's norm ×1.02) while claiming
//! the real model's sha256 in its receipts. The validator must reject the cheater's
//! proofs; two epochs after that round the cheater's incentive and emission are 0 and both
//! honest miners earn, read through `noesis_metagraph` and through the epoch's
//! `NeuronEmission` events; the gateway then routes to honest miners only.
//! Needs the SmolLM2 model and the adversary files installed (`scripts/test.sh` does it).

#[path = "../../../crates/ai/tests/common/mod.rs"]
mod ai_common;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, Bytes, U256};
use alloy_sol_types::SolEvent;
use common::dev_signer;
use noesis_execution::modules::subnets::{
    SUBNET_ADDRESS, interface::events::NeuronEmission, weights::epoch_index,
};
use noesis_roles::miner::{Miner, MinerConfig};
use serde_json::{Value, json};

const TEMPO: u64 = 10;
const NETUID: u16 = 1;

fn get_json(url: &str) -> Value {
    ureq::get(url)
        .call()
        .expect("GET")
        .body_mut()
        .read_json()
        .expect("JSON")
}

fn neuron(metagraph: &Value, uid: u16) -> Value {
    metagraph["neurons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["uid"] == json!(uid))
        .cloned()
        .unwrap_or_else(|| panic!("uid {uid} is not in the metagraph"))
}

fn emission(n: &Value) -> U256 {
    serde_json::from_value(n["emission"].clone()).unwrap()
}

#[test]
fn the_validator_zeroes_a_cheating_miner_and_the_honest_ones_earn() {
    let dir = tempfile::tempdir().unwrap();
    let (dev, gateway) = common::DevNode::start_market(
        dir.path(),
        &[
            "--gateway-port",
            "0",
            "--miners",
            "2",
            "--tempo",
            &TEMPO.to_string(),
        ],
    );

    // The cheater: the perturbed model, receipts claiming the real model's hash.
    let mut engine = ai_common::adversary("perturbed-norm-1.02-L10");
    engine.info.sha256 = noesis_ai::models::KNOWN_MODELS[0].sha256.to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let key = dev_signer(5);
    let cheater_uid = runtime.block_on(async {
        let client = noesis_roles::rpc::RpcClient::new(&dev.url);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let uid = noesis_roles::chain::ensure_registered(&client, &key, NETUID)
            .await
            .unwrap();
        noesis_roles::chain::serve_axon(&client, &key, NETUID, addr.ip(), addr.port())
            .await
            .unwrap();
        let miner = Arc::new(Miner::new(
            Arc::new(engine),
            key.clone(),
            MinerConfig {
                model_id: noesis_ai::models::DEFAULT_MODEL.into(),
                slots: 1,
                queue: 4,
                retry_after_secs: 1,
            },
        ));
        tokio::spawn(async move {
            axum::serve(listener, noesis_roles::miner::router(miner))
                .await
                .unwrap();
        });
        uid
    });

    // Wait for a round that rejected the cheater, then two more epochs.
    let started = Instant::now();
    let mut rejected_in: Option<u64> = None;
    let honest: Vec<u16>;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(400),
            "no verdict on the cheater in time; scores: {}",
            get_json(&format!("{}/validator.json", dev.url))
        );
        let board = get_json(&format!("{}/validator.json", dev.url));
        let lines = board["miners"].as_array().cloned().unwrap_or_default();
        if rejected_in.is_none()
            && let Some(line) = lines.iter().find(|l| l["uid"] == json!(cheater_uid))
        {
            assert_eq!(line["verdict"], "rejected", "{line}");
            let reason = line["reason"].as_str().unwrap();
            assert!(reason.contains("proof rejected"), "{reason}");
            assert_eq!(line["weight"], 0);
            rejected_in = board["epoch"].as_u64();
        }
        if let Some(epoch) = rejected_in {
            let head = dev.quantity("eth_blockNumber", json!([])) as u64;
            if epoch_index(NETUID, TEMPO, head) >= epoch + 2 {
                // Honest lines accepted and weighted in the latest round.
                let accepted: Vec<u16> = lines
                    .iter()
                    .filter(|l| l["verdict"] == "accepted")
                    .map(|l| l["uid"].as_u64().unwrap() as u16)
                    .collect();
                assert_eq!(accepted.len(), 2, "{board}");
                honest = accepted;
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }

    let metagraph = dev.call("noesis_metagraph", json!([NETUID]));
    let cheater = neuron(&metagraph, cheater_uid);
    assert_eq!(cheater["incentive"], 0, "{cheater}");
    assert_eq!(emission(&cheater), U256::ZERO, "{cheater}");
    for uid in &honest {
        let n = neuron(&metagraph, *uid);
        assert!(n["incentive"].as_u64().unwrap() > 0, "{n}");
        assert!(emission(&n) > U256::ZERO, "{n}");
    }

    // The same through the events of the latest epoch block.
    let logs = dev.call(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "latest", "address": SUBNET_ADDRESS,
                "topics": [NeuronEmission::SIGNATURE_HASH]}]),
    );
    let logs = logs.as_array().unwrap();
    let last_block = logs
        .iter()
        .filter_map(|l| l["blockNumber"].as_str())
        .max_by_key(|b| u64::from_str_radix(&b[2..], 16).unwrap())
        .expect("NeuronEmission events")
        .to_string();
    let incentive_of = |uid: u16| -> U256 {
        logs.iter()
            .filter(|l| l["blockNumber"] == json!(last_block))
            .filter(|l| l["topics"][2] == json!(B256::from(U256::from(uid))))
            .map(|l| {
                let data: Bytes = serde_json::from_value(l["data"].clone()).unwrap();
                let topics: Vec<B256> = serde_json::from_value(l["topics"].clone()).unwrap();
                NeuronEmission::decode_raw_log(topics, &data)
                    .unwrap()
                    .incentiveAlpha
            })
            .sum()
    };
    assert_eq!(incentive_of(cheater_uid), U256::ZERO);
    for uid in &honest {
        assert!(
            incentive_of(*uid) > U256::ZERO,
            "uid {uid} earned no incentive"
        );
    }

    // The gateway now routes by incentive: the cheater gets no traffic.
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..4 {
        let answer: Value = ureq::post(&format!("{}/chat/completions", gateway))
            .send_json(json!({
                "model": noesis_ai::models::DEFAULT_MODEL,
                "messages": [{"role": "user", "content": "Name a colour."}],
                "max_tokens": 8,
            }))
            .expect("gateway answer")
            .body_mut()
            .read_json()
            .unwrap();
        let uid = answer["noesis"]["miner_uid"].as_u64().unwrap() as u16;
        assert!(honest.contains(&uid), "answered by uid {uid}: {answer}");
        assert!(
            answer["noesis"]["verdict"]
                .as_str()
                .unwrap()
                .starts_with("accepted")
        );
    }
}

/// Serves `miner` on a free local port; returns the address and the server task.
async fn serve(router: axum::Router) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, task)
}

#[test]
fn the_validator_scores_slow_impostor_and_dead_miners_down() {
    use noesis_execution::modules::subnets::state::Param;
    use noesis_roles::chain::{
        add_stake, create_subnet, ensure_registered, serve_axon, set_hyperparameter,
    };
    use noesis_roles::validator::{Validator, ValidatorConfig};

    let dir = tempfile::tempdir().unwrap();
    let node = common::DevNode::start(dir.path(), &["--block-time", "1"]);
    let engine = Arc::new(ai_common::load(2));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = node.url.clone();
    let (honest, slow, impostor, dead, validator) = runtime.block_on(async {
        let client = noesis_roles::rpc::RpcClient::new(&url);
        let owner = dev_signer(0);
        let netuid = create_subnet(
            &client,
            &owner,
            noesis_execution::modules::subnets::hotkey_of(owner.address()),
            None,
        )
        .await
        .unwrap()
        .netuid;
        set_hyperparameter(&client, &owner, netuid, Param::Tempo, U256::from(4u64))
            .await
            .unwrap();
        set_hyperparameter(&client, &owner, netuid, Param::WeightsRateLimit, U256::ZERO)
            .await
            .unwrap();
        set_hyperparameter(
            &client,
            &owner,
            netuid,
            Param::CommitRevealEnabled,
            U256::ZERO,
        )
        .await
        .unwrap();
        let miner = |key: alloy_signer_local::PrivateKeySigner| {
            noesis_roles::miner::router(Arc::new(Miner::new(
                engine.clone(),
                key,
                MinerConfig {
                    model_id: noesis_ai::models::DEFAULT_MODEL.into(),
                    slots: 1,
                    queue: 4,
                    retry_after_secs: 1,
                },
            )))
        };
        // Honest; slow (1.5 s before every answer); an impostor whose receipts another key
        // signs; a miner that announced its endpoint, then died.
        let (honest_addr, _) = serve(miner(dev_signer(1))).await;
        let (slow_addr, _) = serve(miner(dev_signer(2)).layer(axum::middleware::from_fn(
            |req: axum::extract::Request, next: axum::middleware::Next| async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                next.run(req).await
            },
        )))
        .await;
        let (impostor_addr, _) = serve(miner(dev_signer(4))).await;
        let (dead_addr, dead_task) = serve(miner(dev_signer(6))).await;
        let mut uids = Vec::new();
        for (key, addr) in [
            (1, honest_addr),
            (2, slow_addr),
            (3, impostor_addr),
            (6, dead_addr),
        ] {
            let key = dev_signer(key);
            uids.push(ensure_registered(&client, &key, netuid).await.unwrap());
            serve_axon(&client, &key, netuid, addr.ip(), addr.port())
                .await
                .unwrap();
        }
        dead_task.abort();
        ensure_registered(&client, &owner, netuid).await.unwrap();
        add_stake(
            &client,
            &owner,
            noesis_execution::modules::subnets::hotkey_of(owner.address()),
            netuid,
            U256::from(10u64).pow(U256::from(19)),
            U256::MAX,
            false,
        )
        .await
        .unwrap();
        let validator = Arc::new(Validator::new(
            &url,
            owner,
            engine.clone(),
            ValidatorConfig {
                netuid,
                model_id: noesis_ai::models::DEFAULT_MODEL.into(),
                challenges: 2,
                max_tokens: 16,
                timeout: Duration::from_secs(20),
                poll: Duration::from_millis(500),
            },
        ));
        tokio::spawn(validator.clone().run());
        (uids[0], uids[1], uids[2], uids[3], validator)
    });

    let started = Instant::now();
    let board = loop {
        let board = validator.scoreboard();
        if board.rounds >= 1
            && board
                .weights
                .as_deref()
                .is_some_and(|w| w.starts_with("set"))
        {
            break board;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no round in time: {board:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let line = |uid: u16| {
        board
            .miners
            .iter()
            .find(|m| m.uid == uid)
            .unwrap_or_else(|| panic!("uid {uid} was not scored: {board:?}"))
            .clone()
    };
    let (h, s, i, d) = (line(honest), line(slow), line(impostor), line(dead));
    assert_eq!((h.tally.verdict, s.tally.verdict), ("accepted", "accepted"));
    assert_eq!(h.weight, u16::MAX, "{board:?}");
    assert!(
        s.tally.latency_ms > h.tally.latency_ms + 1000.0,
        "{board:?}"
    );
    assert!(
        f64::from(s.weight) < 0.8 * f64::from(h.weight),
        "the slow miner kept {} of {}",
        s.weight,
        h.weight
    );
    assert_eq!(i.tally.verdict, "rejected");
    assert!(
        i.tally.reason.as_deref().unwrap().contains("signed by"),
        "{i:?}"
    );
    assert_eq!(d.tally.verdict, "unreachable");
    assert_eq!((i.weight, d.weight), (0, 0));
    // The weights reached the chain: the validator's row was updated after it registered.
    let row = node.call("noesis_neuron", json!([board.netuid, board.uid.unwrap()]));
    assert!(
        row["lastUpdate"].as_u64().unwrap() > row["registrationBlock"].as_u64().unwrap(),
        "{row}"
    );
}
