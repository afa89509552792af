// EIP-712 domain and types of a Noesis inference receipt (crates/ai/src/proof/receipt.rs).
export const domain = { name: 'Noesis Inference Receipt', version: '1' };
export const types = {
  InferenceReceipt: [
    { name: 'model', type: 'bytes32' },
    { name: 'tokenizer', type: 'bytes32' },
    { name: 'request', type: 'bytes32' },
    { name: 'outputText', type: 'bytes32' },
    { name: 'outputTokens', type: 'bytes32' },
    { name: 'proof', type: 'bytes32' },
    { name: 'promptTokens', type: 'uint32' },
    { name: 'completionTokens', type: 'uint32' },
    { name: 'signer', type: 'address' },
  ],
};
