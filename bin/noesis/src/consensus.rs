//! Validator mode of `noesis node` (ADR 0013): the `[consensus]` section of the node
//! config, consensus keys as hex, and the engine's view served over JSON-RPC.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use alloy_primitives::B256;
use anyhow::Context;
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{
    Signer,
    ed25519::{PrivateKey, PublicKey},
};
use noesis_consensus::{
    Archive, Status,
    network::{NetworkConfig, NetworkHandle},
};
use noesis_node::Chain;
use serde::{Deserialize, Serialize};

/// The `[consensus]` section: present, the node is a validator and commits only
/// blocks the validator set finalized; absent, it runs the dev sealer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusSection {
    /// File holding this validator's ed25519 private key as hex (relative paths are
    /// relative to the config file).
    pub key_file: PathBuf,
    /// Address the authenticated p2p listens on.
    pub listen: String,
    /// Where every validator of the chain spec's set listens, this node included.
    pub validators: Vec<ValidatorEntry>,
}

/// One member of the validator set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
    /// Its ed25519 public key, hex.
    pub public_key: String,
    /// Where its p2p listens.
    pub address: String,
}

/// A checked `[consensus]` section.
pub struct Validator {
    key: PrivateKey,
    listen: SocketAddr,
    validators: Vec<(PublicKey, SocketAddr)>,
}

impl Validator {
    /// Reads the key file and checks the section against the chain spec's validator
    /// set `set`: addresses parse, keys decode, no key appears twice, every member of
    /// the set has an address and no one else does, and this node's key is in the set.
    pub fn load(section: &ConsensusSection, base: &Path, set: &[B256]) -> anyhow::Result<Self> {
        let set = validator_set(set)?;
        let key_path = base.join(&section.key_file);
        let text = std::fs::read_to_string(&key_path).with_context(|| {
            format!("cannot read the consensus key file {}", key_path.display())
        })?;
        let key = private_key_from_hex(text.trim())
            .with_context(|| format!("invalid consensus key in {}", key_path.display()))?;
        let listen: SocketAddr = section.listen.parse().with_context(|| {
            format!(
                "invalid [consensus] listen address {:?} (expected IP:PORT)",
                section.listen
            )
        })?;
        anyhow::ensure!(
            !section.validators.is_empty(),
            "[consensus] validators is empty: list every validator, this node included"
        );
        let mut validators = Vec::with_capacity(section.validators.len());
        for (i, v) in section.validators.iter().enumerate() {
            let public_key = public_key_from_hex(&v.public_key)
                .with_context(|| format!("invalid public_key of [consensus] validator {i}"))?;
            let address: SocketAddr = v.address.parse().with_context(|| {
                format!(
                    "invalid address {:?} of [consensus] validator {i} (expected IP:PORT)",
                    v.address
                )
            })?;
            anyhow::ensure!(
                !validators.iter().any(|(k, _)| *k == public_key),
                "[consensus] validator {i} repeats public key {}",
                v.public_key
            );
            validators.push((public_key, address));
        }
        for (i, (key, _)) in validators.iter().enumerate() {
            anyhow::ensure!(
                set.contains(key),
                "[consensus] validator {i} ({}) is not in the chain spec's validator set",
                public_key_hex(key)
            );
        }
        for key in &set {
            anyhow::ensure!(
                validators.iter().any(|(k, _)| k == key),
                "validator {} of the chain spec has no address in [consensus] validators",
                public_key_hex(key)
            );
        }
        let me = key.public_key();
        anyhow::ensure!(
            set.contains(&me),
            "this node's consensus key (public key {}) is not in the chain spec's validator set",
            public_key_hex(&me)
        );
        Ok(Self {
            key,
            listen,
            validators,
        })
    }

    /// This validator's public key, hex.
    pub fn public_key(&self) -> String {
        public_key_hex(&self.key.public_key())
    }

    /// Its p2p listen address.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Size of the validator set.
    pub fn count(&self) -> usize {
        self.validators.len()
    }

    /// Starts the validator on `chain`, with consensus storage under `storage_dir`.
    pub fn spawn(self, chain: Arc<Chain>, storage_dir: PathBuf) -> anyhow::Result<NetworkHandle> {
        let config = NetworkConfig {
            key: self.key,
            listen: self.listen,
            validators: self.validators,
            namespace: namespace(chain.chain_id()),
            storage_dir,
            timeouts: Default::default(),
        };
        noesis_consensus::network::spawn_validator(config, chain)
            .map_err(|e| anyhow::anyhow!("cannot start the validator: {e}"))
    }
}

/// The chain spec's validator set as consensus keys; an error when it is empty or a
/// key is not an ed25519 public key.
pub fn validator_set(set: &[B256]) -> anyhow::Result<Vec<PublicKey>> {
    anyhow::ensure!(
        !set.is_empty(),
        "the chain spec lists no validators: a network's genesis names its validator set \
         (\"validators\": [their ed25519 public keys, hex]); `noesis testnet init` writes one"
    );
    set.iter()
        .enumerate()
        .map(|(i, key)| {
            PublicKey::decode(key.to_vec()).map_err(|e| {
                anyhow::anyhow!(
                    "validator {i} of the chain spec ({key}) is not an ed25519 public key: {e}"
                )
            })
        })
        .collect()
}

/// The namespace of a chain's consensus signatures and handshakes (binds them to the
/// chain id).
pub fn namespace(chain_id: u64) -> Vec<u8> {
    format!("noesis-{chain_id}").into_bytes()
}

/// The engine's status and stored finalized blocks as JSON-RPC reads them.
pub struct StatusView {
    status: Arc<Status>,
    archive: Archive,
}

impl StatusView {
    /// The view of a running validator.
    pub fn new(network: &NetworkHandle) -> Self {
        Self {
            status: network.status.clone(),
            archive: network.archive.clone(),
        }
    }
}

impl noesis_rpc::ConsensusInfo for StatusView {
    fn status(&self) -> serde_json::Value {
        let mut status = self.status.to_json();
        status["role"] = "validator".into();
        status
    }
    fn syncing(&self) -> Option<(u64, u64, u64)> {
        self.status.syncing()
    }
    fn peer_count(&self) -> u64 {
        self.status.live_peers().len() as u64
    }
    fn finalized_blocks(&self, from: u64, limit: usize) -> noesis_rpc::FinalizedFuture {
        let archive = self.archive.clone();
        Box::pin(async move {
            let latest = archive.latest().await.unwrap_or_default();
            let blocks = archive
                .range(from, limit)
                .await
                .into_iter()
                .map(|c| noesis_rpc::FinalizedBlock {
                    block: c.block.into(),
                    finalization: c.finalization.map(Into::into),
                })
                .collect();
            Some(noesis_rpc::FinalizedBlocks {
                latest: alloy_primitives::U64::from(latest),
                blocks,
            })
        })
    }
}

/// A new consensus key from 32 random bytes; returns it and its public key as hex.
pub fn generate_key() -> (String, String) {
    let seed: [u8; 32] = rand::random();
    let key = private_key_from_bytes(&seed);
    (
        alloy_primitives::hex::encode(seed),
        public_key_hex(&key.public_key()),
    )
}

fn private_key_from_bytes(bytes: &[u8; 32]) -> PrivateKey {
    // Any 32 bytes are an ed25519 secret key: this decode cannot fail.
    PrivateKey::decode(bytes.to_vec()).unwrap_or_else(|_| unreachable!("32-byte ed25519 seed"))
}

/// An ed25519 private key from 64 hex digits (`0x` allowed).
fn private_key_from_hex(text: &str) -> anyhow::Result<PrivateKey> {
    let bytes: [u8; 32] = alloy_primitives::hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("expected 64 hex digits (32 bytes)"))?;
    Ok(private_key_from_bytes(&bytes))
}

/// An ed25519 public key from 64 hex digits (`0x` allowed).
fn public_key_from_hex(text: &str) -> anyhow::Result<PublicKey> {
    let bytes = alloy_primitives::hex::decode(text.trim())
        .map_err(|_| anyhow::anyhow!("{text:?} is not hex"))?;
    anyhow::ensure!(
        bytes.len() == 32,
        "expected 64 hex digits (32 bytes), got {}",
        2 * bytes.len()
    );
    PublicKey::decode(bytes).map_err(|e| anyhow::anyhow!("not an ed25519 public key: {e}"))
}

/// A public key as hex, no prefix.
pub fn public_key_hex(key: &PublicKey) -> String {
    alloy_primitives::hex::encode(key.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(dir: &Path, key_hex: &str, members: &[String]) -> ConsensusSection {
        std::fs::write(dir.join("consensus.key"), key_hex).unwrap();
        ConsensusSection {
            key_file: "consensus.key".into(),
            listen: "127.0.0.1:30400".into(),
            validators: members
                .iter()
                .enumerate()
                .map(|(i, k)| ValidatorEntry {
                    public_key: k.clone(),
                    address: format!("127.0.0.1:{}", 30400 + i),
                })
                .collect(),
        }
    }

    /// A chain spec's validator set of these hex keys.
    fn set_of(keys: &[&String]) -> Vec<B256> {
        keys.iter().map(|k| k.parse().unwrap()).collect()
    }

    #[test]
    fn generated_keys_load_and_must_be_members_of_the_chain_spec_set() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = generate_key();
        let (_, other) = generate_key();
        let (_, third) = generate_key();
        assert_eq!((secret.len(), public.len()), (64, 64));
        let load = |s: &ConsensusSection, set: &[B256]| Validator::load(s, dir.path(), set);
        let err = |s: &ConsensusSection, set: &[B256]| format!("{:#}", load(s, set).err().unwrap());

        let ok = section(dir.path(), &secret, &[other.clone(), public.clone()]);
        let validator = load(&ok, &set_of(&[&public, &other])).unwrap();
        assert_eq!(validator.public_key(), public);
        assert_eq!(validator.count(), 2);

        let outsider = section(dir.path(), &secret, std::slice::from_ref(&other));
        let e = err(&outsider, &set_of(&[&other]));
        assert!(e.contains("not in the chain spec's validator set"), "{e}");
        let e = err(&ok, &set_of(&[&public, &other, &third]));
        assert!(
            e.contains(&format!(
                "validator {third} of the chain spec has no address"
            )),
            "{e}"
        );
        let e = err(&ok, &set_of(&[&public]));
        assert!(
            e.contains(&format!("validator 0 ({other}) is not in the chain spec")),
            "{e}"
        );
        let e = err(&ok, &[]);
        assert!(e.contains("the chain spec lists no validators"), "{e}");
    }

    #[test]
    fn bad_sections_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = generate_key();
        let set = set_of(&[&public]);
        let err = |s: &ConsensusSection| {
            format!("{:#}", Validator::load(s, dir.path(), &set).err().unwrap())
        };

        let mut s = section(dir.path(), "zz", std::slice::from_ref(&public));
        assert!(err(&s).contains("invalid consensus key"), "{}", err(&s));
        s = section(dir.path(), &secret, std::slice::from_ref(&public));
        s.listen = "localhost".into();
        assert!(err(&s).contains("listen address"), "{}", err(&s));
        s = section(dir.path(), &secret, std::slice::from_ref(&public));
        s.validators[0].address = "127.0.0.1".into();
        assert!(err(&s).contains("address \"127.0.0.1\""), "{}", err(&s));
        s = section(dir.path(), &secret, &["abcd".into()]);
        assert!(
            err(&s).contains("public_key of [consensus] validator 0"),
            "{}",
            err(&s)
        );
        s = section(dir.path(), &secret, &[public.clone(), public.clone()]);
        assert!(err(&s).contains("repeats"), "{}", err(&s));
        s.key_file = "missing.key".into();
        assert!(
            err(&s).contains("cannot read the consensus key file"),
            "{}",
            err(&s)
        );
    }
}
