//! The checks of a miner's answer that the gateway and the validator share: the receipt
//! is for exactly the request that was sent, signed by the miner's hotkey, receipts the
//! text that was returned and names the subnet's model; and, on a sample or always, the
//! proof of inference re-run on the real model.

use std::sync::Arc;

use alloy_primitives::Address;
use noesis_ai::proof::receipt::{ReceiptFile, Request as ReceiptRequest};

use crate::openai::ChatCompletion;

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
