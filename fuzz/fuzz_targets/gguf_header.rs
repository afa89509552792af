//! GGUF headers as they arrive in a downloaded model file: `noesis_ai::gguf::Gguf::read`
//! must never panic nor allocate from an unchecked count, and whatever it accepts must
//! describe tensors that lie inside the file, which candle then loads without panicking.
//! The metadata it accepts then goes through the llama hyperparameter checks, the
//! tokenizer builder (`tokenizer.ggml.*`) and the chat template compiler, as
//! `Engine::load` does.

#![no_main]

use std::io::Cursor;

use candle_core::Device;
use candle_core::quantized::gguf_file::Value;
use libfuzzer_sys::fuzz_target;
use noesis_ai::gguf::{Gguf, LlamaConfig};
use noesis_ai::{ChatMessage, ChatTemplate, Tokenizer};

fuzz_target!(|data: &[u8]| {
    // The input as a header prefix of a much larger file: reads past the input fail as
    // truncation, data bounds are checked against the claimed length.
    let _ = Gguf::read(data, 1 << 40);

    // The input as a whole file.
    let Ok(g) = Gguf::read(data, data.len() as u64) else {
        return;
    };
    let len = data.len() as u64;
    let start = g.content.tensor_data_offset;
    assert!(
        start <= len.next_multiple_of(g_alignment(&g)),
        "data starts past the end"
    );
    for (name, info) in &g.content.tensor_infos {
        let elems = info.shape.elem_count() as u64;
        let block = info.ggml_dtype.block_size() as u64;
        let size = elems / block * info.ggml_dtype.type_size() as u64;
        let end = start + info.offset + size;
        assert!(
            end <= len,
            "tensor `{name}` ends at {end}, past the file ({len})"
        );
        // candle reads every accepted descriptor (small ones: the input is small anyway).
        if elems <= 1 << 16 {
            let t = g
                .content
                .tensor(&mut Cursor::new(data), name, &Device::Cpu)
                .expect("a validated tensor loads");
            let _ = t.dequantize(&Device::Cpu);
        }
    }

    let _ = g.architecture();
    let _ = g.supported_architecture();
    let _ = LlamaConfig::from_gguf(&g);
    if let Ok(tok) = Tokenizer::from_gguf(&g) {
        for text in ["Hello, world! 123", "<|im_start|>user\nhi<|im_end|>", ""] {
            if let Ok(ids) = tok.encode(text, true) {
                let _ = tok.decode(&ids);
            }
        }
    }
    if let Some(Value::String(src)) = g.get("tokenizer.chat_template")
        && let Ok(t) = ChatTemplate::new(src, "<s>", "</s>")
    {
        let _ = t.render(&[ChatMessage::new("user", "hi")], true);
    }
});

/// The alignment the header declares (32 by default).
fn g_alignment(g: &Gguf) -> u64 {
    match g.get("general.alignment") {
        Some(Value::U32(a)) => u64::from(*a),
        _ => 32,
    }
}
