//! The OpenAI-shaped JSON that miners, the gateway and the validator read from the
//! network: a chat-completions request (miner and gateway: decoded, then mapped to the
//! runtime's messages and sampling), an embeddings request (gateway), and a miner's
//! chat-completion answer (gateway and validator: decoded, then its receipt checked
//! against the request it names). Never a panic, whatever the bytes; a decoded request
//! maps to sampling parameters that validate or to a 4xx error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use noesis_roles::check::check_answer;
use noesis_roles::gateway::embeddings;
use noesis_roles::openai::{ChatCompletion, ChatCompletionRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<ChatCompletionRequest>(data) {
        let _ = request.streaming();
        if let Err(e) = request.to_runtime(1) {
            assert!(e.status.is_client_error(), "{e:?}");
        }
    }
    if let Err(e) = embeddings::decode(data) {
        assert!(e.status.is_client_error(), "{e:?}");
    }
    if let Ok(answer) = serde_json::from_slice::<ChatCompletion>(data) {
        let expected = answer.noesis.receipt.request.clone();
        let signer = alloy_primitives::Address::ZERO;
        let _ = check_answer(&answer, &expected, signer, Some("00"));
        let _ = check_answer(&answer, &expected, signer, None);
    }
});
