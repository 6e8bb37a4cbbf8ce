//! Labeled trees and the hash trees that certify them (interface
//! specification, "Certification").
//!
//! A [`LabeledTree`] is the state as data: labeled subtrees and leaf
//! values. [`LabeledTree::hash_tree`] turns it into a [`HashTree`] whose
//! root hash a certificate signs; [`HashTree::prune`] keeps only what a
//! reader asked for, replacing the rest with hashes, and keeps the
//! neighbours of each label that is absent so that its absence is proven.
//!
//! ```text
//! reconstruct(Empty)       = H(domain_sep("ic-hashtree-empty"))
//! reconstruct(Fork t1 t2)  = H(domain_sep("ic-hashtree-fork") · reconstruct(t1) · reconstruct(t2))
//! reconstruct(Labeled l t) = H(domain_sep("ic-hashtree-labeled") · l · reconstruct(t))
//! reconstruct(Leaf v)      = H(domain_sep("ic-hashtree-leaf") · v)
//! reconstruct(Pruned h)    = h
//! ```

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::cbor::write as cbor;

/// A label: any blob (texts such as `time`, or principals' bytes).
pub type Label = Vec<u8>;

/// A path: labels from the root.
pub type Path = Vec<Label>;

/// The state as a tree of labeled subtrees with blob values in the leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabeledTree {
    Leaf(Vec<u8>),
    SubTree(BTreeMap<Label, LabeledTree>),
}

/// A hash tree as the specification defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashTree {
    Empty,
    Fork(Box<HashTree>, Box<HashTree>),
    Labeled(Label, Box<HashTree>),
    Leaf(Vec<u8>),
    Pruned([u8; 32]),
}

/// `byte(|s|) · s`.
fn domain_sep(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.push(s.len() as u8);
    v.extend_from_slice(s.as_bytes());
    v
}

fn fork_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain_sep("ic-hashtree-fork"));
    h.update(l);
    h.update(r);
    h.finalize().into()
}

fn labeled_hash(label: &[u8], content: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain_sep("ic-hashtree-labeled"));
    h.update(label);
    h.update(content);
    h.finalize().into()
}

fn leaf_hash(value: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain_sep("ic-hashtree-leaf"));
    h.update(value);
    h.finalize().into()
}

fn empty_hash() -> [u8; 32] {
    Sha256::digest(domain_sep("ic-hashtree-empty")).into()
}

impl LabeledTree {
    /// An empty subtree.
    pub fn empty() -> LabeledTree {
        LabeledTree::SubTree(BTreeMap::new())
    }

    /// Puts `value` at `path`, making the subtrees on the way (a leaf on
    /// the way is replaced by a subtree).
    pub fn insert(&mut self, path: &[&[u8]], value: Vec<u8>) {
        let Some((first, rest)) = path.split_first() else {
            *self = LabeledTree::Leaf(value);
            return;
        };
        if let LabeledTree::Leaf(_) = self {
            *self = LabeledTree::empty();
        }
        if let LabeledTree::SubTree(children) = self {
            children
                .entry(first.to_vec())
                .or_insert_with(LabeledTree::empty)
                .insert(rest, value);
        }
    }

    /// The hash tree of this tree: each subtree's children, in label order,
    /// folded into a balanced binary tree of forks (no children: `Empty`).
    pub fn hash_tree(&self) -> HashTree {
        match self {
            LabeledTree::Leaf(v) => HashTree::Leaf(v.clone()),
            LabeledTree::SubTree(children) => {
                let nodes: Vec<HashTree> = children
                    .iter()
                    .map(|(l, t)| HashTree::Labeled(l.clone(), Box::new(t.hash_tree())))
                    .collect();
                fold_forks(nodes)
            }
        }
    }
}

/// Folds nodes into a balanced tree of forks, keeping their order.
fn fold_forks(mut nodes: Vec<HashTree>) -> HashTree {
    match nodes.len() {
        0 => HashTree::Empty,
        1 => nodes.pop().unwrap_or(HashTree::Empty),
        n => {
            let right = nodes.split_off(n / 2);
            HashTree::Fork(Box::new(fold_forks(nodes)), Box::new(fold_forks(right)))
        }
    }
}

/// What of a labeled node a pruned tree keeps.
#[derive(Clone, Debug)]
enum Reveal<'p> {
    /// The label only (its subtree as a hash): a neighbour proving that
    /// another label is absent.
    Label,
    /// The label and what these paths below it reach.
    Paths(Vec<&'p [Label]>),
    /// The label and its whole subtree.
    All,
}

impl<'p> Reveal<'p> {
    fn merge(self, other: Reveal<'p>) -> Reveal<'p> {
        match (self, other) {
            (Reveal::All, _) | (_, Reveal::All) => Reveal::All,
            (Reveal::Paths(mut a), Reveal::Paths(b)) => {
                a.extend(b);
                Reveal::Paths(a)
            }
            (Reveal::Paths(a), Reveal::Label) | (Reveal::Label, Reveal::Paths(a)) => {
                Reveal::Paths(a)
            }
            (Reveal::Label, Reveal::Label) => Reveal::Label,
        }
    }
}

impl HashTree {
    /// The root hash (`reconstruct` in the specification).
    pub fn digest(&self) -> [u8; 32] {
        match self {
            HashTree::Empty => empty_hash(),
            HashTree::Fork(l, r) => fork_hash(&l.digest(), &r.digest()),
            HashTree::Labeled(l, t) => labeled_hash(l, &t.digest()),
            HashTree::Leaf(v) => leaf_hash(v),
            HashTree::Pruned(h) => *h,
        }
    }

    /// The CBOR encoding of the specification's CDDL:
    /// `[0]`, `[1 t t]`, `[2 label t]`, `[3 value]`, `[4 hash]`.
    pub fn encode_cbor(&self, out: &mut Vec<u8>) {
        match self {
            HashTree::Empty => {
                cbor::array(out, 1);
                cbor::uint(out, 0);
            }
            HashTree::Fork(l, r) => {
                cbor::array(out, 3);
                cbor::uint(out, 1);
                l.encode_cbor(out);
                r.encode_cbor(out);
            }
            HashTree::Labeled(label, t) => {
                cbor::array(out, 3);
                cbor::uint(out, 2);
                cbor::bytes(out, label);
                t.encode_cbor(out);
            }
            HashTree::Leaf(v) => {
                cbor::array(out, 2);
                cbor::uint(out, 3);
                cbor::bytes(out, v);
            }
            HashTree::Pruned(h) => {
                cbor::array(out, 2);
                cbor::uint(out, 4);
                cbor::bytes(out, h);
            }
        }
    }

    /// This tree pruned to `paths`, with the same root hash.
    ///
    /// What a path reaches is kept whole (a path that ends at a subtree
    /// reveals all of it). For a label a path asks for that is not there,
    /// its neighbours in label order are kept (label only), so that
    /// `lookup_path` answers `Absent`; a path that runs into a leaf keeps
    /// the leaf. Everything else becomes `Pruned` hashes.
    pub fn prune(&self, paths: &[Path]) -> HashTree {
        let refs: Vec<&[Label]> = paths.iter().map(|p| p.as_slice()).collect();
        self.prune_refs(&refs)
    }

    fn prune_refs<'p>(&self, paths: &[&'p [Label]]) -> HashTree {
        if paths.is_empty() {
            return self.pruned_unless_empty();
        }
        if paths.iter().any(|p| p.is_empty()) {
            return self.clone();
        }
        match self {
            // A leaf ends every path through it: kept, it proves that the
            // longer paths are absent.
            HashTree::Leaf(_) | HashTree::Pruned(_) => return self.clone(),
            HashTree::Empty | HashTree::Fork(..) | HashTree::Labeled(..) => {}
        }
        let mut nodes = Vec::new();
        self.flatten(&mut nodes);
        let labels: Vec<Option<&[u8]>> = nodes
            .iter()
            .map(|n| match n {
                HashTree::Labeled(l, _) => Some(l.as_slice()),
                _ => None,
            })
            .collect();
        let mut reveal: BTreeMap<usize, Reveal<'p>> = BTreeMap::new();
        let mut add = |i: usize, r: Reveal<'p>| {
            let merged = match reveal.remove(&i) {
                Some(old) => old.merge(r),
                None => r,
            };
            reveal.insert(i, merged);
        };
        for &path in paths {
            let Some((first, rest)) = path.split_first() else {
                continue;
            };
            let first = first.as_slice();
            match labels.iter().position(|l| *l == Some(first)) {
                Some(i) if rest.is_empty() => add(i, Reveal::All),
                Some(i) => add(i, Reveal::Paths(vec![rest])),
                None => {
                    // The closest labels on either side prove the absence.
                    let before = labels
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| l.is_some_and(|l| l < first))
                        .map(|(i, _)| i)
                        .next_back();
                    let after = labels.iter().position(|l| l.is_some_and(|l| l > first));
                    for i in before.into_iter().chain(after) {
                        add(i, Reveal::Label);
                    }
                }
            }
        }
        let mut next = 0;
        self.rebuild(&reveal, &mut next)
    }

    /// `Pruned(digest)`, except for trees made of forks and `Empty` only,
    /// which stay (they prove absence, and are no larger).
    fn pruned_unless_empty(&self) -> HashTree {
        if self.node_count() == 0 {
            self.clone()
        } else {
            HashTree::Pruned(self.digest())
        }
    }

    /// `flatten_forks`: the nodes under the forks, in order (no `Empty`).
    fn flatten<'a>(&'a self, out: &mut Vec<&'a HashTree>) {
        match self {
            HashTree::Empty => {}
            HashTree::Fork(l, r) => {
                l.flatten(out);
                r.flatten(out);
            }
            other => out.push(other),
        }
    }

    fn node_count(&self) -> usize {
        match self {
            HashTree::Empty => 0,
            HashTree::Fork(l, r) => l.node_count() + r.node_count(),
            _ => 1,
        }
    }

    /// Rebuilds the forks over the flattened nodes, numbered from `next`,
    /// keeping the revealed ones and pruning every fork with none.
    fn rebuild(&self, reveal: &BTreeMap<usize, Reveal<'_>>, next: &mut usize) -> HashTree {
        match self {
            HashTree::Empty => HashTree::Empty,
            HashTree::Fork(l, r) => {
                let count = self.node_count();
                if reveal.range(*next..*next + count).next().is_none() {
                    *next += count;
                    return self.pruned_unless_empty();
                }
                let l = l.rebuild(reveal, next);
                let r = r.rebuild(reveal, next);
                HashTree::Fork(Box::new(l), Box::new(r))
            }
            node => {
                let i = *next;
                *next += 1;
                match (node, reveal.get(&i)) {
                    (HashTree::Labeled(l, t), Some(Reveal::Label)) => {
                        HashTree::Labeled(l.clone(), Box::new(t.pruned_unless_empty()))
                    }
                    (HashTree::Labeled(l, t), Some(Reveal::Paths(paths))) => {
                        HashTree::Labeled(l.clone(), Box::new(t.prune_refs(paths)))
                    }
                    (_, Some(Reveal::All)) => node.clone(),
                    _ => node.pruned_unless_empty(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labeled(l: &str, t: HashTree) -> HashTree {
        HashTree::Labeled(l.as_bytes().to_vec(), Box::new(t))
    }
    fn leaf(v: &str) -> HashTree {
        HashTree::Leaf(v.as_bytes().to_vec())
    }
    fn fork(l: HashTree, r: HashTree) -> HashTree {
        HashTree::Fork(Box::new(l), Box::new(r))
    }
    fn path(p: &[&str]) -> Path {
        p.iter().map(|l| l.as_bytes().to_vec()).collect()
    }
    fn cbor_hex(t: &HashTree) -> String {
        let mut out = Vec::new();
        t.encode_cbor(&mut out);
        hex::encode(out)
    }

    /// The example tree of the specification ("Certification", Example).
    fn spec_example() -> HashTree {
        fork(
            fork(
                labeled(
                    "a",
                    fork(
                        fork(labeled("x", leaf("hello")), HashTree::Empty),
                        labeled("y", leaf("world")),
                    ),
                ),
                labeled("b", leaf("good")),
            ),
            fork(labeled("c", HashTree::Empty), labeled("d", leaf("morning"))),
        )
    }

    #[test]
    fn spec_example_root_hash_and_cbor() {
        let t = spec_example();
        assert_eq!(
            cbor_hex(&t),
            "8301830183024161830183018302417882034568656c6c6f810083024179820345776f726c64\
             83024162820344676f6f648301830241638100830241648203476d6f726e696e67"
        );
        assert_eq!(
            hex::encode(t.digest()),
            "eb5c5b2195e62d996b84c9bcc8259d19a83786a2f59e0878cec84c811f669aa0"
        );
    }

    /// Pruning the example to /a/y, /ax and /d gives the specification's
    /// pruned tree, byte for byte.
    #[test]
    fn spec_example_pruned() {
        let t = spec_example();
        let pruned = t.prune(&[path(&["a", "y"]), path(&["ax"]), path(&["d"])]);
        assert_eq!(
            cbor_hex(&pruned),
            "83018301830241618301820458201b4feff9bef8131788b0c9dc6dbad6e81e524249c879e9f1\
             0f71ce3749f5a63883024179820345776f726c6483024162820458207b32ac0c6ba8ce35ac\
             82c255fc7906f7fc130dab2a090f80fe12f9c2cae83ba6830182045820ec8324b8a1f1ac16\
             bd2e806edba78006479c9877fed4eb464a25485465af601d830241648203476d6f726e696e67"
        );
        assert_eq!(pruned.digest(), t.digest());
    }

    #[test]
    fn labeled_tree_builds_balanced_sorted_forks() {
        let mut lt = LabeledTree::empty();
        for (l, v) in [("d", "4"), ("a", "1"), ("c", "3"), ("b", "2"), ("e", "5")] {
            lt.insert(&[l.as_bytes()], v.as_bytes().to_vec());
        }
        let expected = fork(
            fork(labeled("a", leaf("1")), labeled("b", leaf("2"))),
            fork(
                labeled("c", leaf("3")),
                fork(labeled("d", leaf("4")), labeled("e", leaf("5"))),
            ),
        );
        assert_eq!(lt.hash_tree(), expected);
        assert_eq!(LabeledTree::empty().hash_tree(), HashTree::Empty);
    }

    /// A path that runs into a leaf keeps the leaf (the longer path is then
    /// absent); a path that ends at a subtree reveals all of it; nothing
    /// asked, nothing but the root hash.
    #[test]
    fn leaves_and_whole_subtrees() {
        let t = spec_example();
        let pruned = t.prune(&[path(&["b", "deeper"])]);
        let fork_ac = fork(
            HashTree::Pruned(
                labeled(
                    "a",
                    fork(
                        fork(labeled("x", leaf("hello")), HashTree::Empty),
                        labeled("y", leaf("world")),
                    ),
                )
                .digest(),
            ),
            labeled("b", leaf("good")),
        );
        assert_eq!(
            pruned,
            fork(
                fork_ac,
                HashTree::Pruned(
                    fork(labeled("c", HashTree::Empty), labeled("d", leaf("morning"))).digest()
                )
            )
        );
        let whole_a = t.prune(&[path(&["a"])]);
        let HashTree::Fork(left, _) = &whole_a else {
            panic!("{whole_a:?}")
        };
        let HashTree::Fork(a, _) = left.as_ref() else {
            panic!("{left:?}")
        };
        assert_eq!(
            a.as_ref(),
            &labeled(
                "a",
                fork(
                    fork(labeled("x", leaf("hello")), HashTree::Empty),
                    labeled("y", leaf("world")),
                ),
            )
        );
        assert_eq!(t.prune(&[]), HashTree::Pruned(t.digest()));
        assert_eq!(whole_a.digest(), t.digest());
    }
}
