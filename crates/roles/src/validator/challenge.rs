//! Challenge prompts. Each one is drawn from a seed that the validator derives from the
//! chain (the hash of the block where its round starts, its own address, the miner's uid
//! and the challenge's index), so a miner cannot know its challenges before that block
//! exists, and anyone can re-derive them afterwards.

use alloy_primitives::{Address, B256, keccak256};
use serde_json::{Value, json};

const SUBJECTS: &[&str] = &[
    "the water cycle",
    "photosynthesis",
    "a lighthouse keeper",
    "prime numbers",
    "the moon",
    "volcanoes",
    "a city at night",
    "honey bees",
    "the printing press",
    "glaciers",
    "a chess opening",
    "black holes",
    "bread baking",
    "the Roman roads",
    "migrating birds",
    "coral reefs",
    "a rainy morning",
    "electric motors",
    "the human heart",
    "desert plants",
    "a library",
    "ocean tides",
    "the alphabet",
    "wind turbines",
    "an old clock",
    "mountain goats",
    "the speed of sound",
    "a market square",
    "rainbows",
    "compound interest",
    "a paper boat",
    "snowflakes",
];

const TASKS: &[&str] = &[
    "Explain {} to a child in two sentences.",
    "Write a haiku about {}.",
    "Give three short facts about {}.",
    "Describe {} in one paragraph.",
    "What is the most surprising thing about {}?",
    "Write the opening line of a story about {}.",
    "Summarize what a student should know about {}.",
    "Compare {} with something from everyday life.",
];

const SYSTEM_PROMPTS: &[&str] = &[
    "You are a concise assistant.",
    "You are a helpful teacher.",
    "Answer plainly and briefly.",
];

/// Sampling temperatures challenges use, in hundredths.
const TEMPERATURES: &[u32] = &[0, 60, 80, 100];

/// The seed of challenge `index` for `uid`, from the round's block hash and the validator.
pub fn challenge_seed(block_hash: B256, validator: Address, uid: u16, index: u32) -> B256 {
    let mut material = Vec::with_capacity(32 + 20 + 2 + 4);
    material.extend_from_slice(block_hash.as_slice());
    material.extend_from_slice(validator.as_slice());
    material.extend_from_slice(&uid.to_be_bytes());
    material.extend_from_slice(&index.to_be_bytes());
    keccak256(material)
}

/// A deterministic stream of numbers from a seed (keccak256 in counter mode).
struct Draws {
    seed: B256,
    counter: u64,
}

impl Draws {
    fn next(&mut self) -> u64 {
        let mut material = self.seed.to_vec();
        material.extend_from_slice(&self.counter.to_be_bytes());
        self.counter += 1;
        let word = keccak256(material);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&word[..8]);
        u64::from_be_bytes(bytes)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let n = items.len().max(1) as u64;
        &items[(self.next() % n) as usize]
    }
}

/// The OpenAI chat-completions request body of the challenge with `seed`, asking `model`
/// for at most `max_tokens` tokens.
pub fn challenge_request(seed: B256, model: &str, max_tokens: u32) -> Value {
    let mut draws = Draws { seed, counter: 0 };
    let subject = draws.pick(SUBJECTS);
    let task = draws.pick(TASKS).replace("{}", subject);
    let a = draws.next() % 900 + 100;
    let b = draws.next() % 900 + 100;
    let content = if draws.next().is_multiple_of(4) {
        format!("{task} Then say what {a} plus {b} is.")
    } else {
        task
    };
    let mut messages = Vec::new();
    if draws.next().is_multiple_of(2) {
        messages.push(json!({"role": "system", "content": draws.pick(SYSTEM_PROMPTS)}));
    }
    messages.push(json!({"role": "user", "content": content}));
    let temperature = f64::from(*draws.pick(TEMPERATURES)) / 100.0;
    // Seeds stay below 2^53 so that every JSON client reads them exactly.
    let sampling_seed = draws.next() >> 11;
    json!({
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "seed": sampling_seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_the_seed_and_vary_with_it() {
        let validator = Address::repeat_byte(1);
        let hash = B256::repeat_byte(7);
        let a = challenge_request(challenge_seed(hash, validator, 1, 0), "m", 32);
        assert_eq!(
            a,
            challenge_request(challenge_seed(hash, validator, 1, 0), "m", 32)
        );
        let mut distinct = std::collections::BTreeSet::new();
        for uid in 0..20u16 {
            for i in 0..3 {
                let r = challenge_request(challenge_seed(hash, validator, uid, i), "m", 32);
                assert!(r["seed"].as_u64().unwrap() < 1 << 53);
                distinct.insert(r["messages"].to_string());
            }
        }
        assert!(
            distinct.len() > 40,
            "only {} distinct prompts",
            distinct.len()
        );
        let other_block = challenge_request(
            challenge_seed(B256::repeat_byte(8), validator, 1, 0),
            "m",
            32,
        );
        assert_ne!(a["seed"], other_block["seed"]);
    }
}
