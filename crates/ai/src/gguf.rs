//! GGUF files: a validating header reader and the llama hyperparameters.
//!
//! The header (metadata key/values and tensor descriptors) is parsed here, with a cap on
//! every count and length read from the file, before anything is allocated from it:
//! version 2 or 3 only, at most [`MAX_TENSORS`] tensors and [`MAX_KV`] metadata entries,
//! strings up to [`MAX_STRING`] bytes, arrays up to [`MAX_ARRAY`] elements (and
//! [`MAX_TOTAL_ARRAY`] in the whole header), arrays nested at most [`MAX_DEPTH`] deep,
//! tensors of 1 to 4 non-zero dimensions whose element count fits in 2^40, a known ggml
//! type whose block divides the row, an aligned offset, data that lies inside the file and
//! no two tensors with overlapping data; duplicate keys or tensor names are refused. The
//! result is handed to candle as its own [`gguf_file::Content`], so candle's tensor
//! loader only ever sees validated descriptors. A file that breaks any rule gives
//! [`AiError::Gguf`] naming the rule; nothing here panics on hostile bytes (the unit
//! tests feed it truncations, bit flips and garbage).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{self, TensorInfo, Value, VersionedMagic};

use crate::error::{AiError, Result};

/// The magic number, "GGUF" read as a little-endian u32.
pub const MAGIC: u32 = 0x4655_4747;
/// Most tensors a file may declare.
pub const MAX_TENSORS: u64 = 65_536;
/// Most metadata entries a file may declare.
pub const MAX_KV: u64 = 65_536;
/// Longest string (key, value or tensor name), in bytes.
pub const MAX_STRING: u64 = 16 << 20;
/// Longest key or tensor name, in bytes.
pub const MAX_NAME: u64 = 4096;
/// Most elements of one array.
pub const MAX_ARRAY: u64 = 1 << 20;
/// Most array elements in the whole header.
pub const MAX_TOTAL_ARRAY: u64 = 4 << 20;
/// Deepest nesting of arrays.
pub const MAX_DEPTH: usize = 2;
/// Most elements of one tensor.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 40;
/// Largest `general.alignment`.
pub const MAX_ALIGNMENT: u64 = 1 << 20;

/// The architectures this runtime implements.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// A parsed, validated GGUF header.
#[derive(Debug)]
pub struct Gguf {
    /// Candle's view of the header (metadata, tensor descriptors, data offset).
    pub content: gguf_file::Content,
    /// Length of the file in bytes.
    pub file_len: u64,
}

impl Gguf {
    /// Reads and validates the header of the GGUF file at `path` (the tensor data is
    /// checked for bounds, not read).
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path)
            .map_err(|e| AiError::io(format!("cannot open {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| AiError::io(format!("cannot stat {}", path.display()), e))?
            .len();
        Self::read(std::io::BufReader::with_capacity(1 << 20, file), len)
    }

    /// Reads and validates a header from `reader`, which holds a file of `file_len` bytes
    /// and is positioned at its start.
    pub fn read(reader: impl Read, file_len: u64) -> Result<Self> {
        let mut src = Src {
            inner: reader,
            pos: 0,
            len: file_len,
            array_elements: 0,
        };
        let content = src.header()?;
        Ok(Self { content, file_len })
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// A required string value.
    pub fn string(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(AiError::Model(format!(
                "metadata `{key}` is a {:?}, expected a string",
                other.value_type()
            ))),
            None => Err(AiError::Model(format!("metadata `{key}` is missing"))),
        }
    }

    /// An optional non-negative integer value (any integer type).
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = match *v {
            Value::U8(x) => Some(u64::from(x)),
            Value::U16(x) => Some(u64::from(x)),
            Value::U32(x) => Some(u64::from(x)),
            Value::U64(x) => Some(x),
            Value::I8(x) => u64::try_from(x).ok(),
            Value::I16(x) => u64::try_from(x).ok(),
            Value::I32(x) => u64::try_from(x).ok(),
            Value::I64(x) => u64::try_from(x).ok(),
            _ => None,
        };
        n.map(Some).ok_or_else(|| {
            AiError::Model(format!(
                "metadata `{key}` is {v:?}, expected a non-negative integer"
            ))
        })
    }

    /// A required non-negative integer value that fits in a usize.
    pub fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?
            .ok_or_else(|| AiError::Model(format!("metadata `{key}` is missing")))
    }

    /// An optional non-negative integer value that fits in a usize.
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.opt_u64(key)? {
            None => Ok(None),
            Some(n) => usize::try_from(n)
                .map(Some)
                .map_err(|_| AiError::Model(format!("metadata `{key}` = {n} is too large"))),
        }
    }

    /// An optional float value (f32 or f64).
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(f64::from(*x))),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(v) => Err(AiError::Model(format!(
                "metadata `{key}` is {v:?}, expected a float"
            ))),
        }
    }

    /// An optional boolean value.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(AiError::Model(format!(
                "metadata `{key}` is {v:?}, expected a bool"
            ))),
        }
    }

    /// An optional array value.
    pub fn opt_array(&self, key: &str) -> Result<Option<&[Value]>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(AiError::Model(format!(
                "metadata `{key}` is a {:?}, expected an array",
                v.value_type()
            ))),
        }
    }

    /// `general.architecture`, whatever it is.
    pub fn architecture(&self) -> Result<&str> {
        self.string("general.architecture")
    }

    /// `general.architecture`, checked against [`SUPPORTED_ARCHITECTURES`].
    pub fn supported_architecture(&self) -> Result<&str> {
        let arch = self.architecture()?;
        if SUPPORTED_ARCHITECTURES.contains(&arch) {
            Ok(arch)
        } else {
            Err(AiError::UnsupportedArchitecture(arch.to_string()))
        }
    }

    /// A tensor's descriptor.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.content.tensor_infos.get(name)
    }
}

/// The hyperparameters of a llama-architecture model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Transformer blocks (`llama.block_count`).
    pub n_layer: usize,
    /// Hidden size (`llama.embedding_length`).
    pub n_embd: usize,
    /// Attention heads (`llama.attention.head_count`).
    pub n_head: usize,
    /// Key/value heads (`llama.attention.head_count_kv`; grouped-query attention when
    /// fewer than the heads).
    pub n_kv_head: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// Hidden size of the MLP (`llama.feed_forward_length`).
    pub n_ff: usize,
    /// Training context length (`llama.context_length`).
    pub context_length: usize,
    /// RoPE base frequency (`llama.rope.freq_base`, default 10000).
    pub rope_freq_base: f32,
    /// Dimensions of each head that RoPE rotates (`llama.rope.dimension_count`, default
    /// the head size).
    pub rope_dim: usize,
    /// RMSNorm epsilon (`llama.attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// Vocabulary size (`llama.vocab_size`, else the token list's length).
    pub vocab_size: usize,
}

/// Caps on hyperparameters, far above any llama-family model.
const MAX_LAYERS: usize = 1024;
const MAX_EMBD: usize = 1 << 17;
const MAX_HEADS: usize = 1024;
const MAX_CONTEXT: usize = 1 << 22;
const MAX_VOCAB: usize = 1 << 22;

impl LlamaConfig {
    /// Reads and checks the hyperparameters of a `llama` GGUF.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = g.supported_architecture()?;
        let key = |k: &str| format!("{arch}.{k}");
        let n_layer = g.usize(&key("block_count"))?;
        let n_embd = g.usize(&key("embedding_length"))?;
        let n_head = g.usize(&key("attention.head_count"))?;
        let n_kv_head = g
            .opt_usize(&key("attention.head_count_kv"))?
            .unwrap_or(n_head);
        let n_ff = g.usize(&key("feed_forward_length"))?;
        let context_length = g.usize(&key("context_length"))?;
        let rope_freq_base = g.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32;
        let rms_eps = g
            .opt_f64(&key("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5) as f32;
        let vocab_size = match g.opt_usize(&key("vocab_size"))? {
            Some(n) => n,
            None => g
                .opt_array("tokenizer.ggml.tokens")?
                .map(<[Value]>::len)
                .ok_or_else(|| {
                    AiError::Model("neither a vocab size nor a token list in the metadata".into())
                })?,
        };
        let check = |what: &str, v: usize, max: usize| {
            if v == 0 || v > max {
                Err(AiError::Model(format!(
                    "{what} = {v} is out of range 1..={max}"
                )))
            } else {
                Ok(())
            }
        };
        check("block_count", n_layer, MAX_LAYERS)?;
        check("embedding_length", n_embd, MAX_EMBD)?;
        check("head_count", n_head, MAX_HEADS)?;
        check("head_count_kv", n_kv_head, n_head)?;
        check("feed_forward_length", n_ff, MAX_EMBD * 8)?;
        check("context_length", context_length, MAX_CONTEXT)?;
        check("vocab_size", vocab_size, MAX_VOCAB)?;
        if n_embd % n_head != 0 {
            return Err(AiError::Model(format!(
                "embedding_length {n_embd} is not a multiple of head_count {n_head}"
            )));
        }
        if n_head % n_kv_head != 0 {
            return Err(AiError::Model(format!(
                "head_count {n_head} is not a multiple of head_count_kv {n_kv_head}"
            )));
        }
        let head_dim = n_embd / n_head;
        let rope_dim = g
            .opt_usize(&key("rope.dimension_count"))?
            .unwrap_or(head_dim);
        if rope_dim > head_dim || rope_dim % 2 != 0 {
            return Err(AiError::Model(format!(
                "rope.dimension_count {rope_dim} must be even and at most the head size {head_dim}"
            )));
        }
        if !(rope_freq_base.is_finite() && rope_freq_base > 0.0) {
            return Err(AiError::Model(format!(
                "rope.freq_base {rope_freq_base} is not a positive number"
            )));
        }
        if !(rms_eps.is_finite() && rms_eps >= 0.0) {
            return Err(AiError::Model(format!(
                "layer_norm_rms_epsilon {rms_eps} is not a non-negative number"
            )));
        }
        Ok(Self {
            n_layer,
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            n_ff,
            context_length,
            rope_freq_base,
            rope_dim,
            rms_eps,
            vocab_size,
        })
    }
}

/// The ggml types candle can load, by their GGUF id.
fn ggml_dtype(id: u32) -> Option<GgmlDType> {
    Some(match id {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

/// A bounded reader: knows the file length, so every length read from the file is
/// checked against what is left before anything is allocated.
struct Src<R> {
    inner: R,
    pos: u64,
    len: u64,
    array_elements: u64,
}

fn bad(msg: impl Into<String>) -> AiError {
    AiError::Gguf(msg.into())
}

impl<R: Read> Src<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let n = buf.len() as u64;
        if n > self.remaining() {
            return Err(bad(format!(
                "truncated at byte {} reading {what} ({n} bytes needed, {} left)",
                self.pos,
                self.remaining()
            )));
        }
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bad(format!("truncated at byte {} reading {what}", self.pos))
            } else {
                AiError::io(format!("reading {what}"), e)
            }
        })?;
        self.pos += n;
        Ok(())
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.bytes(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// A length-prefixed string of at most `max` bytes.
    fn string(&mut self, max: u64, what: &str) -> Result<Vec<u8>> {
        let n = self.u64(what)?;
        if n > max {
            return Err(bad(format!("{what}: length {n} exceeds the limit {max}")));
        }
        if n > self.remaining() {
            return Err(bad(format!(
                "{what}: length {n} runs past the end of the file ({} bytes left)",
                self.remaining()
            )));
        }
        let mut buf = vec![0u8; n as usize];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    /// A key or tensor name: short, valid UTF-8.
    fn name(&mut self, what: &str) -> Result<String> {
        let raw = self.string(MAX_NAME, what)?;
        String::from_utf8(raw).map_err(|_| bad(format!("{what} is not valid UTF-8")))
    }

    fn value(&mut self, ty: u32, depth: usize, key: &str) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.u8(key)?),
            1 => Value::I8(self.u8(key)? as i8),
            2 => Value::U16(self.u16(key)?),
            3 => Value::I16(self.u16(key)? as i16),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(self.u32(key)? as i32),
            6 => Value::F32(f32::from_bits(self.u32(key)?)),
            7 => match self.u8(key)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(bad(format!("`{key}`: bool byte {b} is neither 0 nor 1"))),
            },
            8 => {
                let raw = self.string(MAX_STRING, key)?;
                // Like llama.cpp and candle: trailing NULs are dropped, invalid UTF-8 is
                // replaced rather than refused (some vocabularies carry such tokens).
                let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                Value::String(String::from_utf8_lossy(&raw[..end]).into_owned())
            }
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(bad(format!(
                        "`{key}`: arrays nested deeper than {MAX_DEPTH}"
                    )));
                }
                let elem_ty = self.u32(key)?;
                let n = self.u64(key)?;
                let min_size: u64 = match elem_ty {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 => 8,
                    9 => 12,
                    10..=12 => 8,
                    t => return Err(bad(format!("`{key}`: unknown array element type {t}"))),
                };
                if n > MAX_ARRAY {
                    return Err(bad(format!(
                        "`{key}`: array of {n} elements exceeds the limit {MAX_ARRAY}"
                    )));
                }
                self.array_elements = self.array_elements.saturating_add(n);
                if self.array_elements > MAX_TOTAL_ARRAY {
                    return Err(bad(format!(
                        "arrays hold more than {MAX_TOTAL_ARRAY} elements in total"
                    )));
                }
                if n.saturating_mul(min_size) > self.remaining() {
                    return Err(bad(format!(
                        "`{key}`: array of {n} elements runs past the end of the file"
                    )));
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(elem_ty, depth + 1, key)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(self.u64(key)? as i64),
            12 => Value::F64(f64::from_bits(self.u64(key)?)),
            t => return Err(bad(format!("`{key}`: unknown value type {t}"))),
        })
    }

    fn header(&mut self) -> Result<gguf_file::Content> {
        let magic = self.u32("the magic number")?;
        if magic != MAGIC {
            return Err(bad(format!(
                "not a GGUF file (magic 0x{magic:08x}, expected 0x{MAGIC:08x})"
            )));
        }
        let version = self.u32("the version")?;
        let magic = match version {
            2 => VersionedMagic::GgufV2,
            3 => VersionedMagic::GgufV3,
            v => return Err(bad(format!("unsupported GGUF version {v} (2 and 3 are)"))),
        };
        let n_tensors = self.u64("the tensor count")?;
        let n_kv = self.u64("the metadata count")?;
        if n_tensors > MAX_TENSORS {
            return Err(bad(format!(
                "{n_tensors} tensors exceed the limit {MAX_TENSORS}"
            )));
        }
        if n_kv > MAX_KV {
            return Err(bad(format!(
                "{n_kv} metadata entries exceed the limit {MAX_KV}"
            )));
        }
        // Smallest entries: a kv is a key length, a type and one byte; a tensor a name
        // length, a dimension count, one dimension, a type and an offset.
        if n_kv * 13 + n_tensors * 32 > self.remaining() {
            return Err(bad(format!(
                "{n_tensors} tensors and {n_kv} metadata entries cannot fit in the file"
            )));
        }
        let mut metadata = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key = self.name(&format!("metadata key #{i}"))?;
            let ty = self.u32(&key)?;
            let value = self.value(ty, 0, &key)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(bad(format!("duplicate metadata key `{key}`")));
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => gguf_file::DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if a.is_power_of_two() && u64::from(*a) <= MAX_ALIGNMENT => {
                u64::from(*a)
            }
            Some(v) => {
                return Err(bad(format!(
                    "general.alignment {v:?} is not a u32 power of two up to {MAX_ALIGNMENT}"
                )));
            }
        };
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = self.name(&format!("tensor name #{i}"))?;
            let n_dims = self.u32(&name)?;
            if !(1..=4).contains(&n_dims) {
                return Err(bad(format!(
                    "tensor `{name}` has {n_dims} dimensions (1 to 4 allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            let mut elements: u64 = 1;
            for _ in 0..n_dims {
                let d = self.u64(&name)?;
                elements = elements.saturating_mul(d);
                dims.push(d);
            }
            if elements == 0 || elements > MAX_TENSOR_ELEMENTS {
                return Err(bad(format!(
                    "tensor `{name}` has dimensions {dims:?}: element count out of range"
                )));
            }
            let type_id = self.u32(&name)?;
            let dtype = ggml_dtype(type_id).ok_or_else(|| {
                bad(format!(
                    "tensor `{name}` has unsupported ggml type {type_id}"
                ))
            })?;
            let block = dtype.block_size() as u64;
            // The first GGUF dimension is the row; quantized blocks never straddle rows.
            if dims[0] % block != 0 {
                return Err(bad(format!(
                    "tensor `{name}`: row length {} is not a multiple of the {dtype:?} block \
                     size {block}",
                    dims[0]
                )));
            }
            let size = elements / block * dtype.type_size() as u64;
            let offset = self.u64(&name)?;
            if offset % alignment != 0 {
                return Err(bad(format!(
                    "tensor `{name}`: offset {offset} is not aligned to {alignment}"
                )));
            }
            // candle wants its shape outermost-first; GGUF lists the row first.
            let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
            tensors.push((name, dtype, shape, offset, size));
        }
        let data_start = self.pos.div_ceil(alignment) * alignment;
        let data_len = self.len.saturating_sub(data_start);
        let mut ranges = Vec::with_capacity(tensors.len());
        let mut tensor_infos = HashMap::with_capacity(tensors.len());
        for (name, dtype, shape, offset, size) in tensors {
            let end = offset.checked_add(size).filter(|&e| e <= data_len);
            let Some(end) = end else {
                return Err(bad(format!(
                    "tensor `{name}`: {size} bytes at data offset {offset} run past the end of \
                     the file ({data_len} data bytes)"
                )));
            };
            ranges.push((offset, end, name.clone()));
            let info = TensorInfo {
                ggml_dtype: dtype,
                shape: candle_core::Shape::from(shape),
                offset,
            };
            if tensor_infos.insert(name.clone(), info).is_some() {
                return Err(bad(format!("duplicate tensor name `{name}`")));
            }
        }
        ranges.sort();
        for pair in ranges.windows(2) {
            if let [(_, end, a), (start, _, b)] = pair
                && start < end
            {
                return Err(bad(format!("tensors `{a}` and `{b}` overlap")));
            }
        }
        Ok(gguf_file::Content {
            magic,
            metadata,
            tensor_infos,
            tensor_data_offset: data_start,
        })
    }
}

/// Test helpers: writing small GGUF files.
#[cfg(test)]
pub(crate) mod write {
    use super::*;

    /// A GGUF file from metadata and raw tensors (name, GGUF dims, type id, bytes).
    pub fn gguf(kv: &[(&str, Value)], tensors: &[(&str, Vec<u64>, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(kv.len() as u64).to_le_bytes());
        for (k, v) in kv {
            string(&mut out, k);
            out.extend_from_slice(&type_id(v).to_le_bytes());
            value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, dims, ty, data) in tensors {
            string(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset += (data.len() as u64).div_ceil(32) * 32;
        }
        while out.len() % 32 != 0 {
            out.push(0);
        }
        let start = out.len();
        for ((_, _, _, data), off) in tensors.iter().zip(offsets) {
            out.resize(start + off as usize, 0);
            out.extend_from_slice(data);
        }
        out
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn type_id(v: &Value) -> u32 {
        match v {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    fn value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.push(*x as u8),
            Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => out.push(u8::from(*x)),
            Value::String(s) => string(out, s),
            Value::Array(items) => {
                let t = items.first().map_or(4, type_id);
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for i in items {
                    value(out, i);
                }
            }
            Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::write::gguf;
    use super::*;

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    fn sample() -> Vec<u8> {
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        gguf(
            &[
                ("general.architecture", s("llama")),
                ("llama.block_count", Value::U32(1)),
                (
                    "tokenizer.ggml.tokens",
                    Value::Array(vec![s("a"), s("b"), s("c")]),
                ),
            ],
            &[
                ("a.weight", vec![4], 0, f32s(&[1.0, 2.0, 3.0, 4.0])),
                ("b.weight", vec![2, 2], 0, f32s(&[5.0, 6.0, 7.0, 8.0])),
            ],
        )
    }

    fn parse(bytes: &[u8]) -> Result<Gguf> {
        Gguf::read(bytes, bytes.len() as u64)
    }

    #[test]
    fn reads_a_valid_file_and_candle_loads_its_tensors() {
        let bytes = sample();
        let g = parse(&bytes).unwrap();
        assert_eq!(g.architecture().unwrap(), "llama");
        assert_eq!(g.opt_u64("llama.block_count").unwrap(), Some(1));
        let t = g
            .content
            .tensor(
                &mut std::io::Cursor::new(&bytes),
                "b.weight",
                &candle_core::Device::Cpu,
            )
            .unwrap();
        let v = t
            .dequantize(&candle_core::Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(v, vec![5.0, 6.0, 7.0, 8.0]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            let err = parse(&bytes[..cut]);
            assert!(err.is_err(), "truncation at {cut} accepted");
        }
    }

    #[test]
    fn bit_flips_and_garbage_never_panic() {
        let bytes = sample();
        // Every byte of the header flipped in turn: errors or a (different) valid parse.
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= mask;
                let _ = parse(&b);
            }
        }
        // Pseudo-random garbage after a valid magic and version.
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            let mut b = MAGIC.to_le_bytes().to_vec();
            b.extend_from_slice(&3u32.to_le_bytes());
            for _ in 0..64 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                b.push((state >> 56) as u8);
            }
            assert!(parse(&b).is_err());
        }
    }

    #[test]
    fn absurd_counts_are_refused_before_allocating() {
        let mut b = MAGIC.to_le_bytes().to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        let e = parse(&b).unwrap_err().to_string();
        assert!(e.contains("exceed the limit"), "{e}");

        // A string claiming 2^40 bytes.
        let mut b = MAGIC.to_le_bytes().to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&(1u64 << 40).to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        let e = parse(&b).unwrap_err().to_string();
        assert!(e.contains("exceeds the limit"), "{e}");
    }

    #[test]
    fn tensor_data_past_the_end_is_refused() {
        let bytes = gguf(
            &[("general.architecture", s("llama"))],
            &[("w", vec![4], 0, vec![0u8; 16])],
        );
        // Drop the last data byte.
        let e = parse(&bytes[..bytes.len() - 1]).unwrap_err().to_string();
        assert!(e.contains("run past the end"), "{e}");
    }

    #[test]
    fn bad_tensor_descriptors_are_refused() {
        let cases: Vec<(Vec<u64>, u32, &str)> = vec![
            (vec![0], 0, "element count"),
            (vec![1 << 30, 1 << 30], 0, "element count"),
            (vec![33], 3, "block size"),
            (vec![4], 99, "unsupported ggml type"),
            (vec![1, 1, 1, 1, 1], 0, "dimensions"),
        ];
        for (dims, ty, want) in cases {
            let bytes = gguf(&[], &[("w", dims.clone(), ty, vec![0u8; 64])]);
            let e = parse(&bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{dims:?} {ty}: {e}");
        }
        let bytes = gguf(
            &[],
            &[
                ("w", vec![4], 0, vec![0u8; 16]),
                ("w", vec![4], 0, vec![0u8; 16]),
            ],
        );
        assert!(parse(&bytes).unwrap_err().to_string().contains("duplicate"));
    }

    #[test]
    fn wrong_magic_version_and_alignment() {
        assert!(
            parse(b"GGML\x03\0\0\0")
                .unwrap_err()
                .to_string()
                .contains("not a GGUF")
        );
        let mut b = sample();
        b[4] = 1;
        assert!(parse(&b).unwrap_err().to_string().contains("version 1"));
        let bytes = gguf(&[("general.alignment", Value::U32(0))], &[]);
        assert!(parse(&bytes).unwrap_err().to_string().contains("alignment"));
    }

    #[test]
    fn unknown_architecture_is_a_clear_error() {
        let bytes = gguf(&[("general.architecture", s("mamba"))], &[]);
        let g = parse(&bytes).unwrap();
        match LlamaConfig::from_gguf(&g) {
            Err(AiError::UnsupportedArchitecture(a)) => assert_eq!(a, "mamba"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hyperparameters_are_checked() {
        let config = |overrides: &[(&'static str, Value)]| {
            let mut kv = vec![
                ("general.architecture", s("llama")),
                ("llama.block_count", Value::U32(2)),
                ("llama.embedding_length", Value::U32(64)),
                ("llama.attention.head_count", Value::U32(4)),
                ("llama.attention.head_count_kv", Value::U32(2)),
                ("llama.feed_forward_length", Value::U32(128)),
                ("llama.context_length", Value::U32(256)),
                ("llama.vocab_size", Value::U32(300)),
            ];
            for (k, v) in overrides {
                match kv.iter_mut().find(|(key, _)| key == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => kv.push((k, v.clone())),
                }
            }
            let bytes = gguf(&kv, &[]);
            LlamaConfig::from_gguf(&parse(&bytes).unwrap())
        };
        let c = config(&[]).unwrap();
        assert_eq!((c.head_dim, c.rope_dim, c.n_kv_head), (16, 16, 2));
        assert_eq!(c.rope_freq_base, 10_000.0);
        let bad: Vec<(&str, Value, &str)> = vec![
            (
                "llama.attention.head_count_kv",
                Value::U32(3),
                "not a multiple",
            ),
            (
                "llama.attention.head_count",
                Value::U32(3),
                "not a multiple",
            ),
            ("llama.block_count", Value::U32(0), "out of range"),
            ("llama.context_length", Value::U64(u64::MAX), "out of range"),
            (
                "llama.embedding_length",
                s("wide"),
                "expected a non-negative integer",
            ),
            (
                "llama.rope.dimension_count",
                Value::U32(17),
                "rope.dimension_count",
            ),
            ("llama.rope.freq_base", Value::F32(-1.0), "freq_base"),
            (
                "llama.attention.layer_norm_rms_epsilon",
                Value::F32(f32::NAN),
                "epsilon",
            ),
        ];
        for (k, v, want) in bad {
            let e = config(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(want), "{k}: {e}");
        }
        let e = config(&[("llama.feed_forward_length", Value::I32(-5))]).unwrap_err();
        assert!(e.to_string().contains("non-negative"), "{e}");
    }
}
