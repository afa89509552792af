//! Asking a miner and checking its answer, as the gateway and the validator both do:
//! [`ask_miner`] sends the request and applies [`check_answer`] (the receipt is for
//! exactly the request that was sent, signed by the miner's hotkey, receipts the text
//! that was returned and names the subnet's model); [`verify_proof`] re-runs the proof of
//! inference on the real model (the gateway on a sample, the validator always).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::Address;
use noesis_ai::proof::receipt::{ReceiptFile, Request as ReceiptRequest};
use serde_json::Value;

use crate::gateway::directory::MinerEndpoint;
use crate::openai::ChatCompletion;

/// A miner's answer whose receipt checked out.
pub struct CheckedAnswer {
    /// The chat completion as the miner sent it.
    pub answer: ChatCompletion,
    /// Its receipt, ready for [`verify_proof`].
    pub receipt: ReceiptFile,
    /// Seconds from sending the request to the end of the answer's body.
    pub seconds: f64,
}

/// Why a miner's answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It is at capacity (HTTP 429): ask again later.
    Busy,
    /// No usable answer: connection error, timeout, a cut-off body, an HTTP error.
    Failed(String),
    /// The body is not a chat completion.
    Malformed(String),
    /// The receipt does not match what was asked and answered (see [`check_answer`]).
    Cheated(String),
}

/// Sends `request` (a chat-completions body) to `miner` and checks the answer against
/// `expected` (see [`check_answer`]); `timeout` bounds the whole exchange.
pub async fn ask_miner(
    http: &reqwest::Client,
    miner: &MinerEndpoint,
    request: &Value,
    expected: &ReceiptRequest,
    model_sha256: Option<&str>,
    timeout: Duration,
) -> Result<CheckedAnswer, Refusal> {
    let transport = |e: reqwest::Error, cut: bool| {
        Refusal::Failed(if e.is_timeout() {
            "timed out".into()
        } else if cut {
            format!("answer cut off: {e}")
        } else {
            format!("unreachable: {e}")
        })
    };
    let started = Instant::now();
    let response = http
        .post(format!("{}/chat/completions", miner.url))
        .json(request)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport(e, false))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| transport(e, true))?;
    let seconds = started.elapsed().as_secs_f64();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(Refusal::Busy);
    }
    if !status.is_success() {
        return Err(Refusal::Failed(format!("HTTP {status}")));
    }
    let answer: ChatCompletion = serde_json::from_slice(&bytes)
        .map_err(|e| Refusal::Malformed(format!("not a chat completion: {e}")))?;
    let receipt =
        check_answer(&answer, expected, miner.signer, model_sha256).map_err(Refusal::Cheated)?;
    Ok(CheckedAnswer {
        answer,
        receipt,
        seconds,
    })
}

/// Checks `answer` from the miner whose hotkey's address is `signer` against the request
/// `expected`; `model_sha256` (hex, no `0x`) is the model the subnet asks for, when known.
/// Returns the receipt on success and why it is refused otherwise.
pub fn check_answer(
    answer: &ChatCompletion,
    expected: &ReceiptRequest,
    signer: Address,
    model_sha256: Option<&str>,
) -> Result<ReceiptFile, String> {
    let receipt = answer.noesis.receipt.clone();
    if receipt.request != *expected {
        return Err("the receipt is for another request".into());
    }
    let checked = receipt.check().map_err(|e| format!("bad receipt: {e}"))?;
    let fields = &checked.file.receipt;
    if fields.signer != signer {
        return Err(format!(
            "receipt signed by {}, not by the miner's hotkey {signer}",
            fields.signer
        ));
    }
    let text = answer
        .choices
        .first()
        .map(|c| c.message.content.as_str())
        .unwrap_or_default();
    if text != checked.file.output.text {
        return Err("the answer's text is not the receipted output".into());
    }
    if let Some(sha) = model_sha256
        && fields.model.to_string() != format!("0x{sha}")
    {
        return Err(format!(
            "the receipt names model {}, not the subnet's 0x{sha}",
            fields.model
        ));
    }
    Ok(checked.file)
}

/// Re-runs the proof of `file` on `engine` (a blocking task); `Err` says why it is refused.
pub async fn verify_proof(engine: Arc<noesis_ai::Engine>, file: ReceiptFile) -> Result<(), String> {
    let verdict = tokio::task::spawn_blocking(move || {
        noesis_ai::proof::verify::verify(
            &engine,
            file,
            &noesis_ai::proof::verify::Tolerances::default(),
        )
    })
    .await
    .map_err(|e| format!("verification task failed: {e}"))?
    .map_err(|e| format!("cannot verify: {e}"))?;
    match verdict.reason {
        Some(reason) => Err(format!("proof rejected: {reason}")),
        None => Ok(()),
    }
}
