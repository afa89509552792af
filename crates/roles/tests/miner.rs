//! The miner's OpenAI-compatible server on the real SmolLM2 model (installed by
//! `noesis model fetch`, as for `crates/ai`'s tests; a missing model fails, it does not
//! skip): answers and streams carry receipts the verifier accepts, errors have OpenAI's
//! shape and status, a full server answers 429 with Retry-After.

use std::sync::{Arc, OnceLock};

use alloy_signer_local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;

use noesis_ai::Engine;
use noesis_ai::proof::receipt::ReceiptFile;
use noesis_ai::proof::verify::{Tolerances, verify};
use noesis_roles::miner::{Miner, MinerConfig, RECEIPT_HEADER, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const MODEL_ID: &str = "smollm2-135m-instruct-q4_1";

#[path = "../../ai/tests/common/mod.rs"]
mod common;
use common::adversary;

/// SmolLM2 loaded once for the whole test binary.
fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(common::load(2))).clone()
}

/// Serves `miner` on a free local port; returns its API base URL.
async fn listen(miner: Arc<Miner>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(miner)).await });
    url
}

/// The key the test miners sign with (dev account 2).
fn miner_key() -> PrivateKeySigner {
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
        .parse()
        .unwrap()
}

fn config(slots: usize, queue: usize, retry_after_secs: u64) -> MinerConfig {
    MinerConfig {
        model_id: MODEL_ID.into(),
        slots,
        queue,
        retry_after_secs,
    }
}

/// A miner on the real model with `slots` and no line (a busy one says 429 at once).
fn miner(slots: usize) -> Arc<Miner> {
    Arc::new(Miner::new(engine(), miner_key(), config(slots, 0, 2)))
}

/// A gateway (no chain behind it: tests set its miners) with these limits.
fn gateway(
    attempts: usize,
    timeout: std::time::Duration,
    verify_per_mille: u32,
) -> noesis_roles::gateway::Gateway {
    noesis_roles::gateway::Gateway::new(
        "http://127.0.0.1:9",
        noesis_roles::gateway::GatewayConfig {
            netuid: 1,
            attempts,
            timeout,
            discovery_timeout: std::time::Duration::from_secs(1),
            verify_per_mille,
            ban: std::time::Duration::from_secs(600),
        },
    )
}

/// The JSON chunks of a server-sent-events body, which must end with `[DONE]`.
fn sse_chunks(body: &[u8]) -> Vec<Value> {
    let body = std::str::from_utf8(body).unwrap();
    let data: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{body}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn post(body: Value) -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn send(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes.to_vec())
}

fn accepted(receipt: ReceiptFile) {
    let verdict = verify(&engine(), receipt, &Tolerances::default()).unwrap();
    assert!(verdict.accepted(), "{verdict:?}");
}

#[tokio::test]
async fn an_answer_carries_a_receipt_the_verifier_accepts() {
    let app = router(miner(2));
    let (status, headers, body) = send(
        &app,
        post(json!({
            "model": MODEL_ID,
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}
            ],
            "max_tokens": 24,
            "temperature": 0.7,
            "seed": 5
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], MODEL_ID);
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.is_empty());
    assert!(["stop", "length"].contains(&v["choices"][0]["finish_reason"].as_str().unwrap()));
    let receipt: ReceiptFile = serde_json::from_value(v["noesis"]["receipt"].clone()).unwrap();
    assert_eq!(receipt.output.text, text);
    assert_eq!(receipt.request.seed, 5);
    assert_eq!(receipt.request.temperature, 0.7);
    assert_eq!(receipt.request.messages[0].role, "system");
    assert_eq!(
        v["usage"]["completion_tokens"].as_u64().unwrap(),
        u64::from(receipt.receipt.completion_tokens)
    );
    // The header holds the same signed fields and signature.
    let header: Value = serde_json::from_str(headers[RECEIPT_HEADER].to_str().unwrap()).unwrap();
    assert_eq!(header["signature"], receipt.signature.as_str());
    assert_eq!(
        header["receipt"],
        serde_json::to_value(&receipt.receipt).unwrap()
    );
    accepted(receipt);
}

#[tokio::test]
async fn a_stream_adds_up_to_the_receipted_answer() {
    let app = router(miner(2));
    let (status, headers, body) = send(
        &app,
        post(json!({
            "model": MODEL_ID,
            "messages": [{"role": "user", "content": "Name three colors."}],
            "max_completion_tokens": 20,
            "temperature": 0,
            "stream": true,
            "stream_options": {"include_usage": true}
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let chunks = sse_chunks(&body);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let ids: std::collections::BTreeSet<String> =
        chunks.iter().map(|c| c["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "one id per stream");
    // Every chunk but the usage one has a choice (clients read `choices[0]`); the finish
    // chunk carries the receipt; the usage chunk ends the stream, as asked.
    let (last, rest) = chunks.split_last().unwrap();
    assert_eq!(last["choices"].as_array().unwrap().len(), 0);
    assert!(last.get("noesis").is_none());
    assert!(
        rest.iter()
            .all(|c| c["choices"].as_array().unwrap().len() == 1)
    );
    let finish = rest.last().unwrap();
    assert!(
        finish["choices"][0]["finish_reason"].is_string(),
        "{chunks:?}"
    );
    let receipt: ReceiptFile = serde_json::from_value(finish["noesis"]["receipt"].clone()).unwrap();
    assert_eq!(receipt.output.text, text);
    assert_eq!(
        last["usage"]["completion_tokens"].as_u64().unwrap(),
        u64::from(receipt.receipt.completion_tokens)
    );
    accepted(receipt);

    // Without stream_options: no usage chunk, and still the receipt on the finish chunk.
    let (_, _, body) = send(
        &app,
        post(json!({
            "model": MODEL_ID,
            "messages": [{"role": "user", "content": "Name a color."}],
            "max_tokens": 6,
            "stream": true
        })),
    )
    .await;
    let chunks = sse_chunks(&body);
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"].as_array().unwrap().len() == 1 && c.get("usage").is_none()),
        "{chunks:?}"
    );
    assert!(
        chunks.last().unwrap()["noesis"]["receipt"].is_object(),
        "{chunks:?}"
    );
}

#[tokio::test]
async fn errors_have_openai_shape_and_status() {
    let app = router(miner(2));
    let cases = [
        (
            post(json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})),
            StatusCode::NOT_FOUND,
            "model_not_found",
            Some("model"),
        ),
        (
            Request::post("/v1/chat/completions")
                .body(Body::from("{not json"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            None,
        ),
        (
            post(
                json!({"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "n": 2}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("n"),
        ),
        (
            post(
                json!({"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "temperature": 3}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("temperature"),
        ),
        (
            post(json!({"model": MODEL_ID, "messages": []})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("messages"),
        ),
        (
            post(json!({"model": MODEL_ID, "messages": [{"role": "tool", "content": "x"}]})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("messages[0].role"),
        ),
        (
            post(
                json!({"model": MODEL_ID, "messages": [{"role": "user", "content": "word ".repeat(9000)}], "max_tokens": 8}),
            ),
            StatusCode::BAD_REQUEST,
            "context_length_exceeded",
            Some("messages"),
        ),
        (
            Request::get("/v1/nothing").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            Request::get("/v1/chat/completions")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            None,
        ),
        (
            Request::get("/v1/models/gpt-4o")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "model_not_found",
            Some("model"),
        ),
        (
            post(
                json!({"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("response_format"),
        ),
    ];
    for (request, status, code, param) in cases {
        let (got, _, body) = send(&app, request).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(v["error"]["type"].is_string());
        assert_eq!(v["error"]["param"].as_str(), param, "{v}");
    }
    // The server still answers.
    let (status, _, body) = send(
        &app,
        Request::get("/v1/models").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"][0]["id"], MODEL_ID);
    let (status, _, body) = send(
        &app,
        Request::get(format!("/v1/models/{MODEL_ID}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["object"].as_str()),
        (Some(MODEL_ID), Some("model"))
    );
}

#[tokio::test]
async fn a_full_server_says_429_with_retry_after_instead_of_hanging() {
    let app = router(miner(1));
    // A long stream holds the only slot while its body is not read.
    let long = app
        .clone()
        .oneshot(post(json!({
            "model": MODEL_ID,
            "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
            "max_tokens": 400,
            "temperature": 0,
            "stream": true
        })))
        .await
        .unwrap();
    assert_eq!(long.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let (status, headers, body) = send(
        &app,
        post(json!({"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "2");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "capacity_exceeded");
    assert!(
        started.elapsed().as_secs() < 2,
        "429 must not wait for a slot"
    );
    // Dropping the stream's client frees the slot: generation stops at the next token.
    drop(long);
    let freed = std::time::Instant::now();
    loop {
        let (status, _, _) = send(
            &app,
            post(json!({"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})),
        )
        .await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            freed.elapsed().as_secs() < 20,
            "the abandoned stream kept its slot"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A miner that runs a perturbed model but claims the real one (the receipt names the
/// real model's sha256, the proof is its own model's): receipts pass every check a
/// gateway can make without the model, so the gateway's sampled re-verification is what
/// catches it, and the client only ever gets the honest miner's answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_re_verifies_proofs_and_routes_around_a_lying_miner() {
    use noesis_roles::gateway::MinerEndpoint;
    let mut cheat = adversary("perturbed-rerandom-L15");
    cheat.info.sha256 = engine().info.sha256.clone();
    let cheat_key: PrivateKeySigner =
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
            .parse()
            .unwrap();
    let cheater = Arc::new(Miner::new(
        Arc::new(cheat),
        cheat_key.clone(),
        config(2, 0, 1),
    ));
    let honest = miner(2);
    let endpoints = vec![
        MinerEndpoint {
            uid: 1,
            signer: honest.signer(),
            url: listen(honest.clone()).await,
            incentive: 1000,
            models: vec![MODEL_ID.into()],
        },
        MinerEndpoint {
            uid: 2,
            signer: cheat_key.address(),
            url: listen(cheater).await,
            incentive: 60000,
            models: vec![MODEL_ID.into()],
        },
    ];
    let gateway = gateway(2, std::time::Duration::from_secs(60), 1000).with_verifier(engine());
    gateway.set_miners(endpoints).await;
    let app = noesis_roles::gateway::router(Arc::new(gateway));
    for seed in 0..6 {
        let (status, headers, body) = send(
            &app,
            post(json!({
                "model": MODEL_ID,
                "messages": [{"role": "user", "content": "Give me a word that rhymes with cat."}],
                "max_tokens": 12,
                "temperature": 0.8,
                "seed": seed
            })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["x-noesis-miner"], "1");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let receipt: ReceiptFile = serde_json::from_value(v["noesis"]["receipt"].clone()).unwrap();
        assert_eq!(receipt.receipt.signer, honest.signer());
    }
    let (_, _, body) = send(
        &app,
        Request::get("/noesis/miners").body(Body::empty()).unwrap(),
    )
    .await;
    let records: Value = serde_json::from_slice(&body).unwrap();
    let cheat = &records["miners"][1]["record"];
    assert_eq!(cheat["answered"], 0, "{records}");
    // Caught once, then banned: it was never asked again.
    assert_eq!(cheat["rejected"], 1, "{records}");
    assert!(
        cheat["banned_for_secs"].as_u64().unwrap() > 500,
        "{records}"
    );
    assert!(records["miners"][0]["record"]["banned_for_secs"].is_null());
    assert!(
        cheat["last_rejection"]
            .as_str()
            .unwrap()
            .starts_with("proof rejected"),
        "{records}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_waits_for_a_busy_miner_instead_of_failing() {
    use noesis_roles::gateway::MinerEndpoint;
    // One miner, one slot, four clients at once: the miner says 429 to all but one, and
    // the gateway asks again until each has its answer.
    let only = miner(1);
    let gateway = gateway(2, std::time::Duration::from_secs(120), 0);
    gateway
        .set_miners(vec![MinerEndpoint {
            uid: 3,
            signer: only.signer(),
            url: listen(only).await,
            incentive: 0,
            models: vec![MODEL_ID.into()],
        }])
        .await;
    let app = noesis_roles::gateway::router(Arc::new(gateway));
    let requests = (0..4).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            send(
                &app,
                post(json!({
                    "model": MODEL_ID,
                    "messages": [{"role": "user", "content": format!("Count to {}.", i + 3)}],
                    "max_tokens": 12,
                })),
            )
            .await
        })
    });
    for request in requests.collect::<Vec<_>>() {
        let (status, _, body) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
}

/// A miner process that dies while answering: it reads the request, sends headers and
/// the start of a body, and closes the connection.
async fn dies_mid_answer() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut socket in listener.incoming().flatten() {
            let mut buf = vec![0u8; 65536];
            let _ = socket.read(&mut buf);
            let _ = socket.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n{\"id\":\"chatcmpl-",
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_answers_from_another_miner_when_one_dies_mid_answer_or_is_too_slow() {
    use noesis_roles::gateway::MinerEndpoint;
    let honest = miner(2);
    let signer = honest.signer();
    // The slow miner runs the real model but waits 4 s before every answer.
    let slow_router = router(honest.clone()).layer(axum::middleware::from_fn(
        |req: axum::extract::Request, next: axum::middleware::Next| async move {
            tokio::time::sleep(std::time::Duration::from_secs(4)).await;
            next.run(req).await
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, slow_router).await });
    let endpoint = |uid: u16, url: String, incentive: u16| MinerEndpoint {
        uid,
        signer,
        url,
        incentive,
        models: vec![MODEL_ID.into()],
    };
    // The faulty miners hold nearly all the incentive, so they are tried first.
    let gateway = Arc::new(gateway(3, std::time::Duration::from_millis(1500), 0));
    gateway
        .set_miners(vec![
            endpoint(1, dies_mid_answer().await, 30000),
            endpoint(2, slow_url, 30000),
            endpoint(3, listen(honest).await, 1),
        ])
        .await;
    let app = noesis_roles::gateway::router(gateway);
    for seed in 0..3 {
        let (status, headers, body) = send(
            &app,
            post(json!({
                "model": MODEL_ID,
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 6,
                "seed": seed
            })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["x-noesis-miner"], "3");
    }
    let (_, _, body) = send(
        &app,
        Request::get("/noesis/miners").body(Body::empty()).unwrap(),
    )
    .await;
    let records: Value = serde_json::from_slice(&body).unwrap();
    let reason = |uid: u64| {
        records["miners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["uid"] == uid)
            .map(|m| {
                m["record"]["last_rejection"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap()
    };
    assert!(reason(1).contains("cut off"), "{records}");
    assert!(reason(2).contains("timed out"), "{records}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_wait_in_line_up_to_the_queue_then_get_429() {
    let app = router(Arc::new(Miner::new(engine(), miner_key(), config(1, 1, 1))));
    // A stream holds the only slot while its body is not read.
    let long = app
        .clone()
        .oneshot(post(json!({
            "model": MODEL_ID,
            "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
            "max_tokens": 400,
            "stream": true
        })))
        .await
        .unwrap();
    let short = || {
        post(
            json!({"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}),
        )
    };
    // The next request waits in line; the one after finds the line full.
    let waiting = tokio::spawn({
        let app = app.clone();
        let request = short();
        async move { send(&app, request).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the second request must wait for the slot"
    );
    let (status, headers, _) = send(&app, short()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    // The slot frees when the stream's client goes away: the waiting request is answered.
    drop(long);
    let (status, _, body) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    // And the line is empty again.
    let (status, _, _) = send(&app, short()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_validator_serves_its_scoreboard_as_json() {
    use noesis_roles::validator::{Validator, ValidatorConfig};
    let key = miner_key();
    let address = key.address();
    let validator = Arc::new(Validator::new(
        "http://127.0.0.1:9",
        key,
        engine(),
        ValidatorConfig {
            netuid: 4,
            model_id: MODEL_ID.into(),
            challenges: 2,
            max_tokens: 16,
            timeout: std::time::Duration::from_secs(5),
            poll: std::time::Duration::from_secs(1),
        },
    ));
    let app = noesis_roles::validator::router(validator);
    let (status, _, body) = send(&app, Request::get("/scores").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let board: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(board["netuid"], 4);
    assert_eq!(board["rounds"], 0);
    assert_eq!(
        board["hotkey"].as_str().unwrap().to_lowercase(),
        format!("{address:#x}")
    );
    assert!(board["miners"].as_array().unwrap().is_empty());
}
