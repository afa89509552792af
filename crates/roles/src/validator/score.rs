//! From challenge outcomes to weights (the formula is ADR 0012's).
//!
//! A miner that failed any challenge of the round — a refused receipt or proof, an error,
//! a timeout — scores 0. A miner that passed all of them scores
//!
//! ```text
//! score = 1/2 + 1/4 · throughput / best_throughput + 1/4 · best_latency / latency
//! ```
//!
//! where throughput is its completion tokens per second over the round and latency its
//! mean seconds per answer, each compared with the best miner of the round. Honest
//! miners therefore keep at least half the weight of the fastest one; speed decides the
//! rest. The weight sent on chain is `round(score / best_score · 65535)`.

use serde::Serialize;

/// What one challenge gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The answer's receipt and proof were accepted.
    Passed {
        /// Seconds from sending the request to the whole answer.
        seconds: f64,
        /// Completion tokens in the answer.
        tokens: u32,
    },
    /// The miner answered, but the answer was refused (the reason says why).
    Refused(String),
    /// No usable answer: connection error, timeout, HTTP error.
    Unreachable(String),
}

/// A miner's round, summarized.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Challenges sent.
    pub challenges: u32,
    /// Challenges passed.
    pub passed: u32,
    /// Mean seconds per passed answer, in milliseconds.
    pub latency_ms: f64,
    /// Completion tokens per second over the passed answers.
    pub tokens_per_sec: f64,
    /// The first refusal or outage, if any.
    pub reason: Option<String>,
    /// `accepted`, `rejected` (an answer was refused) or `unreachable`.
    pub verdict: &'static str,
}

impl Tally {
    /// Sums up `outcomes`.
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut tally = Tally {
            challenges: u32::try_from(outcomes.len()).unwrap_or(u32::MAX),
            verdict: "accepted",
            ..Default::default()
        };
        let (mut seconds, mut tokens) = (0.0f64, 0u64);
        for outcome in outcomes {
            match outcome {
                Outcome::Passed {
                    seconds: s,
                    tokens: t,
                } => {
                    tally.passed += 1;
                    seconds += s;
                    tokens += u64::from(*t);
                }
                Outcome::Refused(why) => {
                    tally.verdict = "rejected";
                    tally.reason.get_or_insert_with(|| why.clone());
                }
                Outcome::Unreachable(why) => {
                    if tally.verdict == "accepted" {
                        tally.verdict = "unreachable";
                    }
                    tally.reason.get_or_insert_with(|| why.clone());
                }
            }
        }
        if outcomes.is_empty() {
            tally.verdict = "unreachable";
            tally.reason = Some("not challenged".into());
        }
        if tally.passed > 0 && seconds > 0.0 {
            tally.latency_ms = seconds * 1000.0 / f64::from(tally.passed);
            tally.tokens_per_sec = tokens as f64 / seconds;
        }
        tally
    }

    /// Whether every challenge passed.
    pub fn clean(&self) -> bool {
        self.verdict == "accepted" && self.passed > 0
    }
}

/// Each tally's score in `[0, 1]` (see the module docs), in the same order.
pub fn scores(tallies: &[Tally]) -> Vec<f64> {
    let clean = || tallies.iter().filter(|t| t.clean());
    let best_tps = clean().map(|t| t.tokens_per_sec).fold(0.0, f64::max);
    let best_latency = clean()
        .map(|t| t.latency_ms)
        .filter(|l| *l > 0.0)
        .fold(f64::INFINITY, f64::min);
    tallies
        .iter()
        .map(|t| {
            if !t.clean() {
                return 0.0;
            }
            let speed = if best_tps > 0.0 {
                t.tokens_per_sec / best_tps
            } else {
                1.0
            };
            let promptness = if t.latency_ms > 0.0 && best_latency.is_finite() {
                best_latency / t.latency_ms
            } else {
                1.0
            };
            0.5 + 0.25 * speed.clamp(0.0, 1.0) + 0.25 * promptness.clamp(0.0, 1.0)
        })
        .collect()
}

/// The on-chain `u16` weight of each score: `round(score / best · 65535)`, at least 1 for
/// any positive score, 0 for a zero score.
pub fn weights(scores: &[f64]) -> Vec<u16> {
    let best = scores.iter().copied().fold(0.0, f64::max);
    scores
        .iter()
        .map(|s| {
            if *s <= 0.0 || best <= 0.0 {
                0
            } else {
                ((s / best * 65535.0).round() as u16).max(1)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(seconds: f64, tokens: u32) -> Outcome {
        Outcome::Passed { seconds, tokens }
    }

    #[test]
    fn a_refused_answer_zeroes_the_miner_and_speed_ranks_the_rest() {
        let fast = Tally::of(&[passed(1.0, 32), passed(1.0, 32)]);
        let slow = Tally::of(&[passed(4.0, 32), passed(4.0, 32)]);
        let cheat = Tally::of(&[passed(0.5, 32), Outcome::Refused("proof rejected".into())]);
        let down = Tally::of(&[Outcome::Unreachable("timed out".into())]);
        assert_eq!(cheat.verdict, "rejected");
        assert_eq!(cheat.reason.as_deref(), Some("proof rejected"));
        assert_eq!(down.verdict, "unreachable");
        let s = scores(&[fast.clone(), slow, cheat, down]);
        assert_eq!(s[0], 1.0);
        // A quarter of the throughput and four times the latency.
        assert!((s[1] - (0.5 + 0.25 * 0.25 + 0.25 * 0.25)).abs() < 1e-12);
        assert_eq!((s[2], s[3]), (0.0, 0.0));
        let w = weights(&s);
        assert_eq!(w[0], 65535);
        assert_eq!(w[1], (s[1] * 65535.0).round() as u16);
        assert_eq!((w[2], w[3]), (0, 0));
        assert_eq!(fast.latency_ms, 1000.0);
        assert_eq!(fast.tokens_per_sec, 32.0);
    }

    #[test]
    fn nothing_to_score_gives_no_weight() {
        assert_eq!(weights(&scores(&[Tally::of(&[])])), vec![0]);
        assert!(weights(&[]).is_empty());
    }
}
