//! Ethereum's Merkle-Patricia trie, persisted node by node and updated incrementally.
//!
//! Hashes and proofs are Ethereum's: a node whose RLP is 32 bytes or longer is referenced
//! by its keccak256 hash, shorter nodes are embedded in their parent, and the node
//! encoding is alloy-trie's, so proofs verify with `alloy_trie::proof`.
//!
//! Storage is by sequence number, not by hash: each new node gets the next [`NodeId`],
//! and its record keeps the ids of its hashed children beside its RLP. New nodes are
//! therefore appended at the end of the node table instead of scattered over it by
//! their random hashes, so a block's write cost grows with the nodes it creates, not
//! with the size of the table (see ADR 0002). Roots are found by hash through a
//! separate index of every committed root.
//!
//! An update loads only the nodes on the paths of the keys it touches. Old nodes are
//! never overwritten, so every past root stays readable (archive state) and
//! `eth_getProof` can be answered for any block.

use alloy_primitives::{B256, Bytes, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::{
    EMPTY_ROOT_HASH, Nibbles, TrieMask,
    nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode, TrieNode},
};

use crate::StoreError;

/// The sequence number a stored node is kept under.
pub type NodeId = u64;

/// Where trie nodes are read from: the store, or a test map.
pub trait NodeSource {
    /// The record of node `id` (see [`NodeWrites`] for its layout), if stored.
    fn node(&self, id: NodeId) -> Result<Option<Vec<u8>>, StoreError>;
    /// The id of the committed root whose hash is `hash`, if any.
    fn root_id(&self, hash: &B256) -> Result<Option<NodeId>, StoreError>;
}

/// A trie node in memory. `Stored` is a reference not yet loaded.
#[derive(Clone, Debug, Default)]
enum Node {
    #[default]
    Empty,
    Leaf(Nibbles, Vec<u8>),
    Extension(Nibbles, Box<Node>),
    Branch(Box<[Node; 16]>),
    Stored(B256, NodeId),
}

/// New nodes and roots produced by updates, to persist.
///
/// A node record is `k` (one byte), the ids of its `k` hashed children in the order
/// they appear in its RLP (8 bytes each, big-endian), then its RLP.
#[derive(Debug, Default)]
pub struct NodeWrites {
    next_id: NodeId,
    /// `(id, record)` in increasing id order.
    pub nodes: Vec<(NodeId, Vec<u8>)>,
    /// `(hash, id)` of every root committed.
    pub roots: Vec<(B256, NodeId)>,
}

impl NodeWrites {
    /// Collects writes whose first node will get id `first_id`.
    pub fn new(first_id: NodeId) -> Self {
        Self {
            next_id: first_id,
            ..Self::default()
        }
    }

    /// The id the next new node will get.
    pub fn next_id(&self) -> NodeId {
        self.next_id
    }

    fn push(&mut self, children: &[NodeId], rlp: &[u8]) -> NodeId {
        let id = self.next_id;
        self.next_id += 1;
        let mut record = Vec::with_capacity(1 + children.len() * 8 + rlp.len());
        record.push(children.len() as u8);
        for child in children {
            record.extend_from_slice(&child.to_be_bytes());
        }
        record.extend_from_slice(rlp);
        self.nodes.push((id, record));
        id
    }
}

/// Splits a node record into its children's ids and its RLP.
fn split_record(record: &[u8]) -> Result<(Vec<NodeId>, &[u8]), StoreError> {
    let bad = || StoreError::Corrupt("bad trie node record".into());
    let (&count, rest) = record.split_first().ok_or_else(bad)?;
    let (ids, rlp) = rest.split_at_checked(count as usize * 8).ok_or_else(bad)?;
    let ids = ids
        .chunks_exact(8)
        .map(|c| NodeId::from_be_bytes(c.try_into().unwrap_or_default()))
        .collect();
    Ok((ids, rlp))
}

/// A trie being updated: start from a root, apply inserts and removals, then commit.
pub struct TrieUpdate<'a, S: NodeSource> {
    source: &'a S,
    root: Node,
}

impl<'a, S: NodeSource> TrieUpdate<'a, S> {
    /// Starts an update of the trie with the given root.
    pub fn new(source: &'a S, root: B256) -> Result<Self, StoreError> {
        let root = if root == EMPTY_ROOT_HASH {
            Node::Empty
        } else {
            Node::Stored(root, root_id(source, &root)?)
        };
        Ok(Self { source, root })
    }

    /// Sets `key` (already hashed, 32 bytes) to `value`; an empty value removes it.
    pub fn set(&mut self, key: &B256, value: Vec<u8>) -> Result<(), StoreError> {
        let path = Nibbles::unpack(key);
        let root = std::mem::replace(&mut self.root, Node::Empty);
        self.root = if value.is_empty() {
            remove(self.source, root, path)?
        } else {
            insert(self.source, root, path, value)?
        };
        Ok(())
    }

    /// Encodes every changed node, appends the ones to store to `writes`, and returns
    /// the new root hash.
    pub fn commit(self, writes: &mut NodeWrites) -> B256 {
        let mut buf = Vec::with_capacity(128);
        match &self.root {
            Node::Empty => EMPTY_ROOT_HASH,
            Node::Stored(hash, _) => *hash,
            root => {
                let (rlp, id) = encode(root, writes, &mut buf);
                // The root is always stored and indexed by hash, even when its RLP is
                // short (a short node has no hashed children).
                let (hash, id) = match (rlp.as_hash(), id) {
                    (Some(hash), Some(id)) => (hash, id),
                    _ => (keccak256(rlp.as_slice()), writes.push(&[], rlp.as_slice())),
                };
                writes.roots.push((hash, id));
                hash
            }
        }
    }
}

fn root_id<S: NodeSource>(source: &S, root: &B256) -> Result<NodeId, StoreError> {
    source
        .root_id(root)?
        .ok_or_else(|| StoreError::Corrupt(format!("unknown trie root {root}")))
}

/// Reads the value stored under `key` (already hashed) in the trie with root `root`.
pub fn get<S: NodeSource>(
    source: &S,
    root: B256,
    key: &B256,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut proof = Vec::new();
    walk(source, root, key, &mut proof, false)
}

/// Returns the proof of `key` (its value or its absence): the RLP of every stored
/// node from the root down the key's path, as `eth_getProof` reports it.
pub fn proof<S: NodeSource>(source: &S, root: B256, key: &B256) -> Result<Vec<Bytes>, StoreError> {
    let mut proof = Vec::new();
    walk(source, root, key, &mut proof, true)?;
    Ok(proof)
}

fn walk<S: NodeSource>(
    source: &S,
    root: B256,
    key: &B256,
    proof: &mut Vec<Bytes>,
    record: bool,
) -> Result<Option<Vec<u8>>, StoreError> {
    if root == EMPTY_ROOT_HASH {
        return Ok(None);
    }
    let path = Nibbles::unpack(key);
    let mut stored = load_record(source, root_id(source, &root)?)?;
    let mut depth = 0usize;
    loop {
        let (ids, rlp) = split_record(&stored)?;
        if record {
            proof.push(Bytes::copy_from_slice(rlp));
        }
        // The next child on the path and its position among the hashed children.
        let (child, hashed_before) = match decode_trie_node(rlp)? {
            TrieNode::EmptyRoot => return Ok(None),
            TrieNode::Leaf(leaf) => {
                return Ok((path.slice(depth..) == leaf.key).then_some(leaf.value));
            }
            TrieNode::Extension(ext) => {
                if !path.slice(depth..).starts_with(&ext.key) {
                    return Ok(None);
                }
                depth += ext.key.len();
                (ext.child, 0)
            }
            TrieNode::Branch(branch) => {
                let Some(nibble) = path.get(depth) else {
                    return Ok(None);
                };
                if !branch.state_mask.is_bit_set(nibble) {
                    return Ok(None);
                }
                let mut stack = branch.stack.into_iter();
                let mut hashed_before = 0;
                for i in 0..nibble {
                    if branch.state_mask.is_bit_set(i) && stack.next().is_some_and(|c| c.is_hash())
                    {
                        hashed_before += 1;
                    }
                }
                let child = stack
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("branch node mask/stack mismatch".into()))?;
                depth += 1;
                (child, hashed_before)
            }
        };
        // A hashed child is a separate stored node; an inline one is decoded in place
        // (and is already part of its parent's RLP in the proof).
        if !child.is_hash() {
            return walk_inline(decode_trie_node(child.as_slice())?, &path, depth);
        }
        let id = *ids
            .get(hashed_before)
            .ok_or_else(|| StoreError::Corrupt("trie node record lacks a child id".into()))?;
        stored = load_record(source, id)?;
    }
}

/// Finishes a walk inside an inline node (only leaves can be inline in a secure trie,
/// but extensions and branches are handled for completeness).
fn walk_inline(
    node: TrieNode,
    path: &Nibbles,
    depth: usize,
) -> Result<Option<Vec<u8>>, StoreError> {
    match node {
        TrieNode::Leaf(leaf) => Ok((path.slice(depth..) == leaf.key).then_some(leaf.value)),
        TrieNode::EmptyRoot => Ok(None),
        TrieNode::Extension(ext) => {
            if !path.slice(depth..).starts_with(&ext.key) || ext.child.is_hash() {
                return Ok(None);
            }
            walk_inline(
                decode_trie_node(ext.child.as_slice())?,
                path,
                depth + ext.key.len(),
            )
        }
        TrieNode::Branch(branch) => {
            let Some(nibble) = path.get(depth) else {
                return Ok(None);
            };
            let mut stack = branch.stack.into_iter();
            for i in 0..16u8 {
                if branch.state_mask.is_bit_set(i) {
                    let child = stack.next();
                    if i == nibble {
                        return match child {
                            Some(c) if !c.is_hash() => {
                                walk_inline(decode_trie_node(c.as_slice())?, path, depth + 1)
                            }
                            _ => Ok(None),
                        };
                    }
                }
            }
            Ok(None)
        }
    }
}

fn load_record<S: NodeSource>(source: &S, id: NodeId) -> Result<Vec<u8>, StoreError> {
    source
        .node(id)?
        .ok_or_else(|| StoreError::Corrupt(format!("missing trie node #{id}")))
}

fn decode_trie_node(rlp: &[u8]) -> Result<TrieNode, StoreError> {
    TrieNode::decode(&mut &rlp[..]).map_err(|e| StoreError::Corrupt(format!("bad trie node: {e}")))
}

/// Loads a stored node into memory (children stay references).
fn load<S: NodeSource>(source: &S, id: NodeId) -> Result<Node, StoreError> {
    let record = load_record(source, id)?;
    let (ids, rlp) = split_record(&record)?;
    from_trie_node(decode_trie_node(rlp)?, &mut ids.into_iter())
}

fn from_child(child: &RlpNode, ids: &mut impl Iterator<Item = NodeId>) -> Result<Node, StoreError> {
    match child.as_hash() {
        Some(hash) => {
            let id = ids
                .next()
                .ok_or_else(|| StoreError::Corrupt("trie node record lacks a child id".into()))?;
            Ok(Node::Stored(hash, id))
        }
        None if child.as_slice() == [alloy_rlp::EMPTY_STRING_CODE] => Ok(Node::Empty),
        // An inline node is shorter than a hash, so it has no hashed children.
        None => from_trie_node(decode_trie_node(child.as_slice())?, &mut std::iter::empty()),
    }
}

fn from_trie_node(
    node: TrieNode,
    ids: &mut impl Iterator<Item = NodeId>,
) -> Result<Node, StoreError> {
    Ok(match node {
        TrieNode::EmptyRoot => Node::Empty,
        TrieNode::Leaf(leaf) => Node::Leaf(leaf.key, leaf.value),
        TrieNode::Extension(ext) => {
            Node::Extension(ext.key, Box::new(from_child(&ext.child, ids)?))
        }
        TrieNode::Branch(branch) => {
            let mut children: [Node; 16] = Default::default();
            let mut stack = branch.stack.iter();
            for (i, slot) in children.iter_mut().enumerate() {
                if branch.state_mask.is_bit_set(i as u8) {
                    let child = stack.next().ok_or_else(|| {
                        StoreError::Corrupt("branch node mask/stack mismatch".into())
                    })?;
                    *slot = from_child(child, ids)?;
                }
            }
            Node::Branch(Box::new(children))
        }
    })
}

fn resolve<S: NodeSource>(source: &S, node: Node) -> Result<Node, StoreError> {
    match node {
        Node::Stored(_, id) => load(source, id),
        other => Ok(other),
    }
}
fn insert<S: NodeSource>(
    source: &S,
    node: Node,
    path: Nibbles,
    value: Vec<u8>,
) -> Result<Node, StoreError> {
    Ok(match resolve(source, node)? {
        Node::Empty => Node::Leaf(path, value),
        Node::Leaf(key, old) => {
            if key == path {
                return Ok(Node::Leaf(key, value));
            }
            let common = key.common_prefix_length(&path);
            let (Some(old_nibble), Some(new_nibble)) = (key.get(common), path.get(common)) else {
                return Err(StoreError::Corrupt("trie keys of different lengths".into()));
            };
            let mut children: [Node; 16] = Default::default();
            children[old_nibble as usize] = Node::Leaf(key.slice(common + 1..), old);
            children[new_nibble as usize] = Node::Leaf(path.slice(common + 1..), value);
            with_prefix(path.slice(..common), Node::Branch(Box::new(children)))
        }
        Node::Extension(key, child) => {
            let common = key.common_prefix_length(&path);
            if common == key.len() {
                let child = insert(source, *child, path.slice(common..), value)?;
                return Ok(Node::Extension(key, Box::new(child)));
            }
            let (Some(ext_nibble), Some(new_nibble)) = (key.get(common), path.get(common)) else {
                return Err(StoreError::Corrupt("trie keys of different lengths".into()));
            };
            let mut children: [Node; 16] = Default::default();
            let rest = key.slice(common + 1..);
            children[ext_nibble as usize] = if rest.is_empty() {
                *child
            } else {
                Node::Extension(rest, child)
            };
            children[new_nibble as usize] = Node::Leaf(path.slice(common + 1..), value);
            with_prefix(path.slice(..common), Node::Branch(Box::new(children)))
        }
        Node::Branch(mut children) => {
            let Some(nibble) = path.get(0) else {
                return Err(StoreError::Corrupt("value at a branch node".into()));
            };
            let slot = &mut children[nibble as usize];
            *slot = insert(source, std::mem::take(slot), path.slice(1..), value)?;
            Node::Branch(children)
        }
        Node::Stored(..) => unreachable!("resolved above"),
    })
}

fn with_prefix(prefix: Nibbles, node: Node) -> Node {
    if prefix.is_empty() {
        node
    } else {
        Node::Extension(prefix, Box::new(node))
    }
}

fn remove<S: NodeSource>(source: &S, node: Node, path: Nibbles) -> Result<Node, StoreError> {
    Ok(match resolve(source, node)? {
        Node::Empty => Node::Empty,
        Node::Leaf(key, value) => {
            if key == path {
                Node::Empty
            } else {
                Node::Leaf(key, value)
            }
        }
        Node::Extension(key, child) => {
            if !path.starts_with(&key) {
                return Ok(Node::Extension(key, child));
            }
            let child = remove(source, *child, path.slice(key.len()..))?;
            join(source, key, child)?
        }
        Node::Branch(mut children) => {
            let Some(nibble) = path.get(0) else {
                return Err(StoreError::Corrupt("value at a branch node".into()));
            };
            let slot = &mut children[nibble as usize];
            *slot = remove(source, std::mem::take(slot), path.slice(1..))?;
            let mut remaining = children
                .iter()
                .enumerate()
                .filter(|(_, c)| !matches!(c, Node::Empty));
            match (remaining.next(), remaining.next()) {
                (None, _) => Node::Empty,
                (Some((index, _)), None) => {
                    // One child left: the branch collapses into its child.
                    let child = std::mem::take(&mut children[index]);
                    let mut prefix = Nibbles::new();
                    prefix.push(index as u8);
                    join(source, prefix, child)?
                }
                _ => Node::Branch(children),
            }
        }
        Node::Stored(..) => unreachable!("resolved above"),
    })
}

/// Puts `prefix` in front of `child`, merging with a leaf or extension child.
fn join<S: NodeSource>(source: &S, prefix: Nibbles, child: Node) -> Result<Node, StoreError> {
    Ok(match resolve(source, child)? {
        Node::Empty => Node::Empty,
        Node::Leaf(key, value) => Node::Leaf(prefix.join(&key), value),
        Node::Extension(key, grandchild) => Node::Extension(prefix.join(&key), grandchild),
        branch => Node::Extension(prefix, Box::new(branch)),
    })
}

/// Encodes `node`, recording every node of 32+ bytes in `writes`; returns its
/// reference in the parent and, when stored, its id.
fn encode(node: &Node, writes: &mut NodeWrites, buf: &mut Vec<u8>) -> (RlpNode, Option<NodeId>) {
    let mut child_ids: Vec<NodeId> = Vec::new();
    let rlp = match node {
        Node::Empty => return (RlpNode::from_rlp(&[alloy_rlp::EMPTY_STRING_CODE]), None),
        Node::Stored(hash, id) => return (RlpNode::word_rlp(hash), Some(*id)),
        Node::Leaf(key, value) => {
            buf.clear();
            LeafNodeRef::new(key, value).rlp(buf)
        }
        Node::Extension(key, child) => {
            let (child, id) = encode(child, writes, buf);
            child_ids.extend(id);
            buf.clear();
            ExtensionNodeRef::new(key, &child).rlp(buf)
        }
        Node::Branch(children) => {
            let mut stack = Vec::with_capacity(16);
            let mut mask = TrieMask::default();
            for (i, child) in children.iter().enumerate() {
                if !matches!(child, Node::Empty) {
                    let (child, id) = encode(child, writes, buf);
                    stack.push(child);
                    child_ids.extend(id);
                    mask.set_bit(i as u8);
                }
            }
            buf.clear();
            BranchNodeRef::new(&stack, mask).rlp(buf)
        }
    };
    match rlp.as_hash() {
        Some(_) => {
            let id = writes.push(&child_ids, buf);
            (rlp, Some(id))
        }
        None => (rlp, None),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_trie::{HashBuilder, proof::verify_proof};

    use super::*;

    #[derive(Default)]
    struct MemSource {
        nodes: std::collections::BTreeMap<NodeId, Vec<u8>>,
        roots: std::collections::HashMap<B256, NodeId>,
    }
    impl NodeSource for MemSource {
        fn node(&self, id: NodeId) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.nodes.get(&id).cloned())
        }
        fn root_id(&self, hash: &B256) -> Result<Option<NodeId>, StoreError> {
            Ok(self.roots.get(hash).copied())
        }
    }
    impl MemSource {
        fn writes(&self) -> NodeWrites {
            NodeWrites::new(self.nodes.keys().last().map_or(1, |id| id + 1))
        }
        fn apply(&mut self, writes: NodeWrites) {
            let first = self.writes().next_id();
            for (expected, (id, record)) in (first..).zip(writes.nodes) {
                assert_eq!(id, expected, "ids are appended in order");
                self.nodes.insert(id, record);
            }
            self.roots.extend(writes.roots);
        }
    }

    fn reference_root(entries: &BTreeMap<B256, Vec<u8>>) -> B256 {
        let mut hb = HashBuilder::default();
        for (k, v) in entries {
            hb.add_leaf(Nibbles::unpack(k), v);
        }
        hb.root()
    }

    /// Deterministic pseudo-random bytes for tests.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    #[test]
    fn incremental_root_matches_hash_builder_across_many_blocks() {
        let mut source = MemSource::default();
        let mut expected = BTreeMap::new();
        let mut root = EMPTY_ROOT_HASH;
        let mut rng = 7u64;
        for block in 0..40 {
            let mut update = TrieUpdate::new(&source, root).unwrap();
            for _ in 0..(1 + block % 17) {
                // Small key space so updates and removals hit existing keys.
                let key = keccak256((splitmix(&mut rng) % 300).to_be_bytes());
                let roll = splitmix(&mut rng) % 10;
                let value = if roll < 3 {
                    Vec::new()
                } else {
                    // Short values exercise inline (embedded) nodes.
                    let len = 1 + (splitmix(&mut rng) % 40) as usize;
                    vec![(roll as u8).wrapping_add(1); len]
                };
                update.set(&key, value.clone()).unwrap();
                if value.is_empty() {
                    expected.remove(&key);
                } else {
                    expected.insert(key, value);
                }
            }
            let mut writes = source.writes();
            root = update.commit(&mut writes);
            source.apply(writes);
            assert_eq!(root, reference_root(&expected), "block {block}");
        }
        // Every key proves its value; absent keys prove absence.
        for (key, value) in &expected {
            assert_eq!(get(&source, root, key).unwrap().as_ref(), Some(value));
            let p = proof(&source, root, key).unwrap();
            verify_proof(root, Nibbles::unpack(key), Some(value.clone()), &p).unwrap();
        }
        let absent = keccak256(b"absent");
        let p = proof(&source, root, &absent).unwrap();
        verify_proof(root, Nibbles::unpack(absent), None, &p).unwrap();
        assert_eq!(get(&source, root, &absent).unwrap(), None);
    }

    #[test]
    fn removing_everything_gives_the_empty_root() {
        let mut source = MemSource::default();
        let keys: Vec<B256> = (0u64..50).map(|i| keccak256(i.to_be_bytes())).collect();
        let mut update = TrieUpdate::new(&source, EMPTY_ROOT_HASH).unwrap();
        for k in &keys {
            update.set(k, vec![1, 2, 3]).unwrap();
        }
        let mut writes = source.writes();
        let root = update.commit(&mut writes);
        source.apply(writes);
        let mut update = TrieUpdate::new(&source, root).unwrap();
        for k in &keys {
            update.set(k, Vec::new()).unwrap();
        }
        assert_eq!(update.commit(&mut source.writes()), EMPTY_ROOT_HASH);
    }
}
