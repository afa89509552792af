//! Inference receipts: what a miner signs for one completion.
//!
//! A receipt binds the model file (sha256), the tokenizer and chat template, the exact
//! request (messages and sampling parameters, seed included), the output text and
//! token ids, the hidden-state commitment and the token counts to the signer's
//! address. It is signed with secp256k1 over EIP-712 typed data, so any Ethereum
//! wallet library can check it (`verifyTypedData` in viem, `verifyTypedData` in
//! ethers). The JSON file carries the signed fields beside the data they hash, so a
//! verifier first checks the chain of hashes, then the signature, then (with the
//! model) the commitment and the sampling.

use alloy_primitives::{Address, B256, Signature, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};
use serde::{Deserialize, Serialize};

use crate::proof::commitment::{CHUNK_TOKENS, Commitment, chunk_k};
use crate::sampling::SamplingParams;
use crate::template::ChatMessage;

sol! {
    /// The signed part of a receipt (EIP-712 primary type).
    #[derive(Debug, PartialEq, Eq)]
    struct InferenceReceipt {
        /// sha256 of the model file.
        bytes32 model;
        /// sha256 of the tokenizer metadata and chat template (see `TokenizerId`).
        bytes32 tokenizer;
        /// keccak256 of the request's canonical JSON.
        bytes32 request;
        /// keccak256 of the output text (UTF-8).
        bytes32 outputText;
        /// keccak256 of the output token ids, each as a 4-byte big-endian integer.
        bytes32 outputTokens;
        /// keccak256 of the hidden-state commitment's bytes.
        bytes32 proof;
        /// Tokens of the rendered prompt.
        uint32 promptTokens;
        /// Tokens generated.
        uint32 completionTokens;
        /// The signer (the miner's address).
        address signer;
    }
}

/// Receipt format version.
pub const RECEIPT_VERSION: u32 = 1;
/// Largest receipt file accepted.
pub const MAX_RECEIPT_BYTES: usize = 8 << 20;
/// Most output tokens a receipt may carry.
pub const MAX_OUTPUT_TOKENS: usize = 1 << 16;

/// The EIP-712 domain of inference receipts.
pub fn domain() -> Eip712Domain {
    eip712_domain! {
        name: "Noesis Inference Receipt",
        version: "1",
    }
}

/// The exact request, as hashed into the receipt: field order is the canonical order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Softmax temperature; 0 is greedy.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0: all).
    pub top_k: u32,
    /// Nucleus: keep the most likely tokens up to this cumulative probability.
    pub top_p: f32,
    /// The sampling seed (chosen by the miner when the client gave none).
    pub seed: u64,
    /// Stop sequences.
    pub stop: Vec<String>,
}

impl Request {
    /// keccak256 of the canonical JSON: the fields in the order above, no whitespace,
    /// floats in their shortest round-trip form (`0.7`, not `0.699999988`).
    pub fn hash(&self) -> B256 {
        keccak256(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The sampling parameters the request asks for.
    pub fn sampling(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
        }
    }

    /// A request for `messages` with `params`.
    pub fn new(messages: Vec<ChatMessage>, params: &SamplingParams) -> Self {
        Self {
            messages,
            max_tokens: params.max_tokens,
            temperature: params.temperature,
            top_k: params.top_k,
            top_p: params.top_p,
            seed: params.seed,
            stop: params.stop.clone(),
        }
    }
}

/// The output of a completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The completion text as returned to the client.
    pub text: String,
    /// The generated token ids, the end-of-generation token included when generation
    /// ended on one (so a verifier can tell a finished answer from a truncated one).
    pub tokens: Vec<u32>,
}

impl From<&crate::generate::Generation> for Output {
    /// A generation's text and token ids.
    fn from(generation: &crate::generate::Generation) -> Self {
        Self {
            text: generation.text.clone(),
            tokens: generation.ids(),
        }
    }
}

impl Output {
    /// keccak256 of the token ids as 4-byte big-endian integers.
    pub fn tokens_hash(&self) -> B256 {
        let bytes: Vec<u8> = self.tokens.iter().flat_map(|t| t.to_be_bytes()).collect();
        keccak256(bytes)
    }
}

/// A receipt file: the signed fields and everything they hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptFile {
    /// [`RECEIPT_VERSION`].
    pub version: u32,
    /// The signed fields.
    pub receipt: SignedFields,
    /// 65-byte signature (r ‖ s ‖ v), hex.
    pub signature: String,
    /// The request.
    pub request: Request,
    /// The output.
    pub output: Output,
    /// The hidden-state commitment, hex.
    pub proof: String,
}

/// The EIP-712 fields as JSON (hex strings and integers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignedFields {
    /// See [`InferenceReceipt`].
    pub model: B256,
    /// See [`InferenceReceipt`].
    pub tokenizer: B256,
    /// See [`InferenceReceipt`].
    pub request: B256,
    /// See [`InferenceReceipt`].
    pub output_text: B256,
    /// See [`InferenceReceipt`].
    pub output_tokens: B256,
    /// See [`InferenceReceipt`].
    pub proof: B256,
    /// See [`InferenceReceipt`].
    pub prompt_tokens: u32,
    /// See [`InferenceReceipt`].
    pub completion_tokens: u32,
    /// See [`InferenceReceipt`].
    pub signer: Address,
}

impl SignedFields {
    fn typed(&self) -> InferenceReceipt {
        InferenceReceipt {
            model: self.model,
            tokenizer: self.tokenizer,
            request: self.request,
            outputText: self.output_text,
            outputTokens: self.output_tokens,
            proof: self.proof,
            promptTokens: self.prompt_tokens,
            completionTokens: self.completion_tokens,
            signer: self.signer,
        }
    }

    /// The EIP-712 signing hash.
    pub fn signing_hash(&self) -> B256 {
        self.typed().eip712_signing_hash(&domain())
    }
}

/// Why a receipt is malformed or does not hold together (machine-readable `code`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// Not a receipt file: bad JSON, wrong types, too large.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// A signed hash does not match the data beside it.
    #[error("the receipt's {0} hash does not match its {0}")]
    HashMismatch(&'static str),
    /// A count does not match the data.
    #[error("the receipt's {0} does not match the data")]
    CountMismatch(&'static str),
    /// The signature is invalid or made by another key than `signer`.
    #[error("bad signature: {0}")]
    BadSignature(String),
}

impl ReceiptError {
    /// A short machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_receipt",
            Self::HashMismatch("request") => "request_hash_mismatch",
            Self::HashMismatch("output text") => "output_text_hash_mismatch",
            Self::HashMismatch("output tokens") => "output_tokens_hash_mismatch",
            Self::HashMismatch(_) => "proof_hash_mismatch",
            Self::CountMismatch(_) => "token_count_mismatch",
            Self::BadSignature(_) => "bad_signature",
        }
    }
}

/// Everything a receipt is built from.
#[derive(Clone, Debug)]
pub struct ReceiptInput {
    /// sha256 of the model file.
    pub model: B256,
    /// See [`InferenceReceipt::tokenizer`].
    pub tokenizer: B256,
    /// The request.
    pub request: Request,
    /// The output.
    pub output: Output,
    /// The commitment.
    pub proof: Commitment,
    /// Tokens of the rendered prompt.
    pub prompt_tokens: u32,
}

/// Builds and signs a receipt.
pub fn sign(input: ReceiptInput, key: &PrivateKeySigner) -> Result<ReceiptFile, ReceiptError> {
    let proof = input.proof.encode();
    let fields = SignedFields {
        model: input.model,
        tokenizer: input.tokenizer,
        request: input.request.hash(),
        output_text: keccak256(input.output.text.as_bytes()),
        output_tokens: input.output.tokens_hash(),
        proof: keccak256(&proof),
        prompt_tokens: input.prompt_tokens,
        completion_tokens: input.output.tokens.len() as u32,
        signer: key.address(),
    };
    let signature = key
        .sign_hash_sync(&fields.signing_hash())
        .map_err(|e| ReceiptError::BadSignature(e.to_string()))?;
    Ok(ReceiptFile {
        version: RECEIPT_VERSION,
        receipt: fields,
        signature: alloy_primitives::hex::encode_prefixed(signature.as_bytes()),
        request: input.request,
        output: input.output,
        proof: alloy_primitives::hex::encode_prefixed(proof),
    })
}

/// A receipt whose hashes, counts and signature hold together.
#[derive(Clone, Debug)]
pub struct CheckedReceipt {
    /// The file.
    pub file: ReceiptFile,
    /// The decoded commitment.
    pub proof: Commitment,
}

impl ReceiptFile {
    /// Parses a receipt file with size limits.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::Malformed(format!(
                "{} bytes, more than the {MAX_RECEIPT_BYTES} allowed",
                bytes.len()
            )));
        }
        let file: Self =
            serde_json::from_slice(bytes).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        if file.version != RECEIPT_VERSION {
            return Err(ReceiptError::Malformed(format!(
                "version {}, expected {RECEIPT_VERSION}",
                file.version
            )));
        }
        if file.output.tokens.len() > MAX_OUTPUT_TOKENS {
            return Err(ReceiptError::Malformed("too many output tokens".into()));
        }
        Ok(file)
    }

    /// Checks the chain of hashes, the counts and the signature (no model needed).
    pub fn check(self) -> Result<CheckedReceipt, ReceiptError> {
        let fields = &self.receipt;
        if fields.request != self.request.hash() {
            return Err(ReceiptError::HashMismatch("request"));
        }
        if fields.output_text != keccak256(self.output.text.as_bytes()) {
            return Err(ReceiptError::HashMismatch("output text"));
        }
        if fields.output_tokens != self.output.tokens_hash() {
            return Err(ReceiptError::HashMismatch("output tokens"));
        }
        let proof_bytes = alloy_primitives::hex::decode(&self.proof)
            .map_err(|e| ReceiptError::Malformed(format!("proof is not hex: {e}")))?;
        if fields.proof != keccak256(&proof_bytes) {
            return Err(ReceiptError::HashMismatch("proof"));
        }
        if fields.completion_tokens as usize != self.output.tokens.len() {
            return Err(ReceiptError::CountMismatch("completion token count"));
        }
        let proof =
            Commitment::decode(&proof_bytes).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        let tokens = self.output.tokens.len();
        let expected: Vec<usize> = (0..tokens.div_ceil(CHUNK_TOKENS))
            .map(|i| chunk_k((tokens - i * CHUNK_TOKENS).min(CHUNK_TOKENS)))
            .collect();
        let found: Vec<usize> = proof.chunks.iter().map(|c| c.coefficients.len()).collect();
        if expected != found {
            return Err(ReceiptError::CountMismatch("commitment's chunk layout"));
        }
        let signature_bytes = alloy_primitives::hex::decode(&self.signature)
            .map_err(|e| ReceiptError::BadSignature(format!("not hex: {e}")))?;
        let signature = Signature::from_raw(&signature_bytes)
            .map_err(|e| ReceiptError::BadSignature(e.to_string()))?;
        let recovered = signature
            .recover_address_from_prehash(&fields.signing_hash())
            .map_err(|e| ReceiptError::BadSignature(e.to_string()))?;
        if recovered != fields.signer {
            return Err(ReceiptError::BadSignature(format!(
                "signed by {recovered}, not by the stated signer {}",
                fields.signer
            )));
        }
        Ok(CheckedReceipt { file: self, proof })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::commitment::CommitmentBuilder;

    fn sample() -> (ReceiptFile, PrivateKeySigner) {
        let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).expect("valid key");
        let mut builder = CommitmentBuilder::new(16);
        let tokens: Vec<u32> = (0..40).collect();
        for t in &tokens {
            let state: Vec<f32> = (0..16)
                .map(|i| (*t as f32 + 1.0) * (i as f32 - 7.5))
                .collect();
            builder.push(&state);
        }
        let input = ReceiptInput {
            model: B256::repeat_byte(1),
            tokenizer: B256::repeat_byte(2),
            request: Request {
                messages: vec![ChatMessage::new("user", "What is the capital of France?")],
                max_tokens: 64,
                temperature: 0.7,
                top_k: 0,
                top_p: 0.9,
                seed: 42,
                stop: vec![],
            },
            output: Output {
                text: "Paris.".into(),
                tokens,
            },
            proof: builder.finish(),
            prompt_tokens: 20,
        };
        (sign(input, &key).expect("signs"), key)
    }

    #[test]
    fn a_signed_receipt_checks_and_survives_json() {
        let (file, key) = sample();
        let json = serde_json::to_vec_pretty(&file).unwrap();
        let parsed = ReceiptFile::parse(&json).unwrap();
        assert_eq!(parsed, file);
        let checked = parsed.check().unwrap();
        assert_eq!(checked.file.receipt.signer, key.address());
    }

    #[test]
    fn every_tampering_is_named() {
        let (file, _) = sample();
        let mut t = file.clone();
        t.request.messages[0].content.push('!');
        assert_eq!(t.check().unwrap_err().code(), "request_hash_mismatch");
        let mut t = file.clone();
        t.request.temperature = 1.5;
        assert_eq!(t.check().unwrap_err().code(), "request_hash_mismatch");
        let mut t = file.clone();
        t.output.text = "Lyon.".into();
        assert_eq!(t.check().unwrap_err().code(), "output_text_hash_mismatch");
        let mut t = file.clone();
        t.output.tokens.pop();
        assert_eq!(t.check().unwrap_err().code(), "output_tokens_hash_mismatch");
        let mut t = file.clone();
        t.proof.push_str("00");
        assert_eq!(t.check().unwrap_err().code(), "proof_hash_mismatch");
        // Re-hashed consistently but signed by no one: the signature catches it.
        let mut t = file.clone();
        t.output.text = "Lyon.".into();
        t.receipt.output_text = keccak256(b"Lyon.");
        assert_eq!(t.check().unwrap_err().code(), "bad_signature");
        // A valid signature by another key than the stated signer.
        let mut t = file.clone();
        t.receipt.signer = Address::repeat_byte(9);
        assert_eq!(t.check().unwrap_err().code(), "bad_signature");
        let mut t = file;
        t.signature = "0x1234".into();
        assert_eq!(t.check().unwrap_err().code(), "bad_signature");
    }

    /// `tests/fixtures/ai/receipt.json` is this sample; the JS suite
    /// (`tests/compat/test/receipt.test.mjs`) checks its signature with viem's and
    /// ethers' `verifyTypedData`. Regenerate with `NOESIS_UPDATE_FIXTURES=1`.
    #[test]
    fn the_wallet_interop_fixture_is_this_sample() {
        let (file, _) = sample();
        let json = serde_json::to_string_pretty(&file).unwrap() + "\n";
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/ai/receipt.json"
        );
        if std::env::var_os("NOESIS_UPDATE_FIXTURES").is_some() {
            std::fs::write(path, &json).unwrap();
        }
        let stored = std::fs::read_to_string(path).expect("the receipt fixture exists");
        assert_eq!(stored, json, "regenerate with NOESIS_UPDATE_FIXTURES=1");
    }

    #[test]
    fn malformed_files_are_refused() {
        assert!(ReceiptFile::parse(b"").is_err());
        assert!(ReceiptFile::parse(b"{}").is_err());
        assert!(ReceiptFile::parse(&vec![b' '; MAX_RECEIPT_BYTES + 1]).is_err());
        let (file, _) = sample();
        let mut value = serde_json::to_value(&file).unwrap();
        value["extra"] = serde_json::json!(1);
        assert!(ReceiptFile::parse(&serde_json::to_vec(&value).unwrap()).is_err());
        let mut value = serde_json::to_value(&file).unwrap();
        value["version"] = serde_json::json!(2);
        let err = ReceiptFile::parse(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert_eq!(err.code(), "malformed_receipt");
    }
}
