"""Merkle tree hashing and proofs over the ledger, as in RFC 9162 (Certificate Transparency
version 2.0), section 2.1. Pure functions: no I/O.

The leaves are the events in position order; the leaf *data* of position ``i`` is its
32-byte event hash (``ledger_events.hash``, docs/FORMAT.md section 3). With ``D[n]`` the
list of ``n`` leaf data items and ``k`` the largest power of two strictly smaller than
``n`` (RFC 9162 2.1.1)::

    MTH({})   = SHA-256()                                  EMPTY_ROOT
    MTH({d})  = SHA-256(0x00 || d)                         leaf_hash(d)
    MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  node_hash(left, right)

The proofs are RFC 9162's inclusion proof (2.1.3, ``PATH``) and consistency proof
(2.1.4, ``PROOF``/``SUBPROOF``), both listed from the leaf end towards the root, and they
are checked with the RFC's verification algorithms (2.1.3.2 and 2.1.4.2). Hashes, hash
order and proof layout are those of RFC 6962 and of the Go implementations
(transparency-dev/merkle), so their proofs verify here and ours there.

Each proof generator has two forms. ``inclusion_proof`` and ``consistency_proof`` take
all leaf hashes; ``inclusion_proof_from`` and ``consistency_proof_from`` take a callable
``subtree_root(start, end)`` returning ``MTH(D[start:end])``, so a store can answer from
stored interior nodes without loading the leaves. Every range they ask for is a node of
the tree: ``start`` is a multiple of a power of two that is ``>= end - start``. Such a
range splits into the perfect subtrees ``decompose(start, end)``, and its root is
``root_from_subtree_roots`` of their roots (see ``subtree_root_from_perfect_nodes``).

Exceptions (defined here, below ``ledger.errors.LedgerError``)::

    LedgerError
    └── ProofError(ValueError)      a proof does not verify
        ├── RootMismatchError       the proof is well formed but gives another root
        └── InvalidProofError       malformed: sizes, index or proof length impossible

>>> leaves = [bytes([i]) * 32 for i in range(5)]
>>> hashes = [leaf_hash(d) for d in leaves]
>>> verify_inclusion(3, 5, hashes[3], inclusion_proof(3, hashes), root(leaves))
>>> verify_consistency(2, 5, root(leaves[:2]), root(leaves), consistency_proof(2, 5, hashes))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from ledger.errors import LedgerError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "InvalidProofError",
    "ProofError",
    "RootMismatchError",
    "SubtreeRoot",
    "consistency_proof",
    "consistency_proof_from",
    "consistency_proof_length",
    "decompose",
    "inclusion_proof",
    "inclusion_proof_from",
    "inclusion_proof_length",
    "largest_power_of_two_below",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "root",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "root_from_subtree_roots",
    "subtree_root_from_leaf_hashes",
    "subtree_root_from_perfect_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeRoot = Callable[[int, int], bytes]
"""``subtree_root(start, end)`` returns ``MTH(D[start:end])``: the root of leaves [start, end)."""

_sha256 = hashlib.sha256


class ProofError(LedgerError, ValueError):
    """A Merkle inclusion or consistency proof does not verify."""


class RootMismatchError(ProofError):
    """The proof is well formed, but the root it gives is not the expected one.

    >>> str(RootMismatchError(expected=bytes(32), calculated=b"\\xff" * 32))[:40]
    'calculated root ffffffffffffffffffffffff'
    """

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        self.expected = expected
        self.calculated = calculated
        super().__init__(
            f"calculated root {calculated.hex()} does not match expected root {expected.hex()}"
        )


class InvalidProofError(ProofError):
    """The proof or its parameters are malformed: an index outside the tree, an old size
    larger than the new one, a proof of the wrong length, a hash that is not 32 bytes.

    >>> InvalidProofError("index 8 is not in a tree of size 8").args[0]
    'index 8 is not in a tree of size 8'
    """


# --- hashing ----------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: ``SHA-256(0x00 || data)`` (RFC 9162 2.1.1).

    >>> leaf_hash(b"").hex()
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'
    """
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)`` (RFC 9162 2.1.1).

    >>> node_hash(leaf_hash(b""), leaf_hash(b"\\x00")).hex()
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'
    """
    return _sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n``, for ``n >= 2``: where
    RFC 9162 splits a tree of ``n`` leaves.

    >>> [largest_power_of_two_below(n) for n in (2, 3, 4, 5, 8, 9)]
    [1, 2, 2, 4, 4, 8]
    """
    if n < 2:
        raise ValueError(f"largest_power_of_two_below needs n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


# --- roots ------------------------------------------------------------------------------


def perfect_subtrees(size: int) -> list[tuple[int, int]]:
    """The maximal perfect subtrees of a tree of ``size`` leaves, left to right: one
    ``[start, start + 2**k)`` per set bit ``k`` of ``size``, largest first.

    ``MTH(D[size]) == root_from_subtree_roots([MTH(D[s:e]) for s, e in perfect_subtrees(size)])``.

    >>> perfect_subtrees(13)
    [(0, 8), (8, 12), (12, 13)]
    """
    if size < 0:
        raise ValueError(f"a tree size must be >= 0, got {size}")
    subtrees: list[tuple[int, int]] = []
    start = 0
    for k in range(size.bit_length() - 1, -1, -1):
        if size >> k & 1:
            subtrees.append((start, start + (1 << k)))
            start += 1 << k
    return subtrees


def decompose(start: int, end: int) -> list[tuple[int, int]]:
    """The range ``[start, end)`` as the fewest aligned perfect subtrees, left to right
    (its *compact range*): each ``[s, s + 2**k)`` with ``s`` a multiple of ``2**k``.

    For a node of the tree (``start`` a multiple of a power of two ``>= end - start``,
    as every range the proof generators ask for) this is ``perfect_subtrees(end - start)``
    shifted by ``start``, so the node's root is ``root_from_subtree_roots`` of their roots.

    >>> decompose(8, 13)
    [(8, 12), (12, 13)]
    >>> decompose(3, 9)
    [(3, 4), (4, 8), (8, 9)]
    """
    if not 0 <= start <= end:
        raise ValueError(f"not a range of leaves: [{start}, {end})")
    left: list[tuple[int, int]] = []
    while start < end:
        # The largest aligned block starting at ``start`` that fits before ``end``.
        size = start & -start if start else 1 << (end - start).bit_length()
        while size > end - start:
            size >>= 1
        left.append((start, start + size))
        start += size
    return left


def root_from_subtree_roots(roots: Sequence[bytes]) -> bytes:
    """Fold subtree roots from the right: ``node_hash(r0, node_hash(r1, ... r_last))``.

    Given the roots of ``perfect_subtrees(n)`` (left to right) this is ``MTH(D[n])``:
    the RFC split of ``n`` leaves puts the largest perfect subtree on the left and the
    rest, recursively, on the right. No roots give ``EMPTY_ROOT``.

    >>> root_from_subtree_roots([leaf_hash(b""), leaf_hash(b"\\x00")]).hex()[:16]
    'fac54203e7cc696c'
    """
    if not roots:
        return EMPTY_ROOT
    result = roots[-1]
    for left in reversed(roots[:-1]):
        result = node_hash(left, result)
    return result


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH`` (RFC 9162 2.1.1) of a tree given its leaf hashes, in O(n) time and
    O(log n) memory: a stack of perfect subtree roots, merged as they pair up, then folded.

    >>> root_from_leaf_hashes([]) == EMPTY_ROOT
    True
    >>> root_from_leaf_hashes([leaf_hash(b""), leaf_hash(b"\\x00")]).hex()[:16]
    'fac54203e7cc696c'
    """
    stack: list[bytes] = []  # roots of the perfect subtrees of the leaves seen so far
    for count, hashed in enumerate(leaf_hashes, start=1):
        stack.append(hashed)
        # Each trailing zero bit of the new count is a pair of equal subtrees to merge.
        merges = (count & -count).bit_length() - 1
        for _ in range(merges):
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
    return root_from_subtree_roots(stack)


def root(data_items: Iterable[bytes]) -> bytes:
    """``MTH`` of a list of leaf data items (in regledger: the event hashes, in position order).

    >>> root([]).hex()
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    >>> root([b""]).hex()
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'
    """
    return root_from_leaf_hashes([leaf_hash(d) for d in data_items])


def subtree_root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> SubtreeRoot:
    """The naive ``subtree_root`` over leaf hashes held in memory: ``MTH`` of the slice.

    The ranges a proof generator asks for are disjoint, so a proof costs O(n) hashes.

    >>> subtree_root_from_leaf_hashes([leaf_hash(b"")])(0, 1).hex()[:16]
    '6e340b9cffb37a98'
    """

    def subtree_root(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(leaf_hashes[start:end])

    return subtree_root


def subtree_root_from_perfect_nodes(node_root: SubtreeRoot) -> SubtreeRoot:
    """A ``subtree_root`` built on ``node_root(start, end)``, which need only answer for
    aligned perfect subtrees (``end - start`` a power of two, ``start`` a multiple of it),
    the nodes a store keeps. Ranges that are not nodes of the tree raise ``ValueError``.

    >>> hashes = [leaf_hash(bytes([i])) for i in range(6)]
    >>> nodes = subtree_root_from_leaf_hashes(hashes)  # stands in for a lookup of stored nodes
    >>> subtree_root_from_perfect_nodes(nodes)(0, 6) == root_from_leaf_hashes(hashes)
    True
    """

    def subtree_root(start: int, end: int) -> bytes:
        if start < 0 or end <= start:
            raise ValueError(f"not a non-empty range of leaves: [{start}, {end})")
        width = 1 << (end - start - 1).bit_length()  # smallest power of two >= end - start
        if start % width:
            raise ValueError(f"[{start}, {end}) is not a node of the tree")
        return root_from_subtree_roots([node_root(s, e) for s, e in decompose(start, end)])

    return subtree_root


# --- inclusion proofs (RFC 9162 2.1.3) ---------------------------------------------------


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise InvalidProofError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise InvalidProofError(f"index {index} is not in a tree of size {size}")


def inclusion_proof_from(index: int, size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """``PATH(index, D[size])`` (RFC 9162 2.1.3.1): the sibling roots from the leaf up,
    each asked of ``subtree_root(start, end)``.

    >>> hashes = [leaf_hash(bytes([i])) for i in range(3)]
    >>> inclusion_proof_from(2, 3, subtree_root_from_leaf_hashes(hashes)) == [
    ...     node_hash(hashes[0], hashes[1])]
    True
    """
    _check_index(index, size)
    siblings: list[bytes] = []  # root end first
    start, end = 0, size
    while end - start > 1:
        middle = start + largest_power_of_two_below(end - start)
        if index < middle:
            siblings.append(subtree_root(middle, end))
            end = middle
        else:
            siblings.append(subtree_root(start, middle))
            start = middle
    siblings.reverse()
    return siblings


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """``PATH(index, D[n])`` (RFC 9162 2.1.3.1) for the tree of all ``leaf_hashes``.

    >>> hashes = [leaf_hash(bytes([i])) for i in range(3)]
    >>> inclusion_proof(0, hashes) == [hashes[1], hashes[2]]
    True
    """
    return inclusion_proof_from(index, len(leaf_hashes), subtree_root_from_leaf_hashes(leaf_hashes))


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes ``PATH(index, D[size])`` has.

    >>> inclusion_proof_length(5, 8), inclusion_proof_length(4, 5)
    (3, 1)
    """
    return len(inclusion_proof_from(index, size, lambda start, end: b""))


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` gives for ``leaf_hash`` at ``index`` in a tree of ``size``
    leaves, by the algorithm of RFC 9162 2.1.3.2. Raises ``InvalidProofError`` if the
    proof cannot be one (index outside the tree, wrong length, hash not 32 bytes).

    >>> hashes = [leaf_hash(bytes([i])) for i in range(3)]
    >>> root_from_inclusion_proof(2, 3, hashes[2], inclusion_proof(2, hashes)) == (
    ...     root_from_leaf_hashes(hashes))
    True
    """
    _check_index(index, size)
    _check_hash("the leaf hash", leaf_hash)
    expected_length = inclusion_proof_length(index, size)
    if len(proof) != expected_length:
        raise InvalidProofError(
            f"an inclusion proof for index {index} in a tree of size {size} has "
            f"{expected_length} hashes, this one has {len(proof)}"
        )
    fn, sn = index, size - 1
    r = leaf_hash
    for i, p in enumerate(proof):
        _check_hash(f"inclusion proof hash {i}", p)
        if sn == 0:  # unreachable after the length check; kept as the RFC states it
            raise InvalidProofError(f"inclusion proof too long for index {index}, size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check
        raise InvalidProofError(f"inclusion proof too short for index {index}, size {size}")
    return r


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size``
    leaves whose root is ``root`` (RFC 9162 2.1.3.2). Returns ``None``; raises
    ``RootMismatchError`` or ``InvalidProofError``.

    >>> hashes = [leaf_hash(bytes([i])) for i in range(3)]
    >>> proof = inclusion_proof(1, hashes)
    >>> verify_inclusion(1, 3, hashes[1], proof, EMPTY_ROOT)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ledger.merkle.RootMismatchError: calculated root ... does not match expected root e3b0c...
    """
    _check_hash("the root", root)
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if calculated != root:
        raise RootMismatchError(expected=root, calculated=calculated)


# --- consistency proofs (RFC 9162 2.1.4) -------------------------------------------------


def _check_sizes(old_size: int, new_size: int) -> None:
    if not 0 <= old_size <= new_size:
        raise InvalidProofError(
            f"old size {old_size} and new size {new_size}: need 0 <= old size <= new size"
        )


def consistency_proof_from(old_size: int, new_size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """``PROOF(old_size, D[new_size])`` (RFC 9162 2.1.4.1, via ``SUBPROOF``), each hash
    asked of ``subtree_root(start, end)``. Empty when ``old_size`` is 0 or ``new_size``:
    those trees are consistent with no proof.

    >>> hashes = [leaf_hash(bytes([i])) for i in range(3)]
    >>> consistency_proof_from(2, 3, subtree_root_from_leaf_hashes(hashes)) == [hashes[2]]
    True
    """
    _check_sizes(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []
    siblings: list[bytes] = []  # root end first
    start, end, m = 0, new_size, old_size  # SUBPROOF(m, D[start:end], complete)
    complete = True  # b: the subtree [start, start + m) is one the verifier has the root of
    while m != end - start:
        k = largest_power_of_two_below(end - start)
        if m <= k:
            siblings.append(subtree_root(start + k, end))
            end = start + k
        else:
            siblings.append(subtree_root(start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        siblings.append(subtree_root(start, end))
    siblings.reverse()
    return siblings


def consistency_proof(old_size: int, new_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """``PROOF(old_size, D[new_size])`` (RFC 9162 2.1.4.1) over the first ``new_size`` of
    ``leaf_hashes``.

    >>> hashes = [leaf_hash(bytes([i])) for i in range(4)]
    >>> consistency_proof(3, 4, hashes) == [hashes[2], hashes[3], node_hash(*hashes[:2])]
    True
    """
    if new_size > len(leaf_hashes):
        raise InvalidProofError(f"new size {new_size} is more than the {len(leaf_hashes)} leaves")
    return consistency_proof_from(old_size, new_size, subtree_root_from_leaf_hashes(leaf_hashes))


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """How many hashes ``PROOF(old_size, D[new_size])`` has (0 if ``old_size`` is 0 or
    ``new_size``).

    >>> consistency_proof_length(1, 8), consistency_proof_length(4, 8)
    (3, 1)
    """
    return len(consistency_proof_from(old_size, new_size, lambda start, end: b""))


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``new_size`` leaves with root ``new_root`` extends the tree
    of ``old_size`` leaves with root ``old_root`` (RFC 9162 2.1.4.2). Returns ``None``;
    raises ``RootMismatchError`` or ``InvalidProofError``.

    Trivial cases, as in RFC 9162 and transparency-dev/merkle: the proof must then be
    empty. ``old_size == new_size`` needs ``old_root == new_root``; ``old_size == 0`` is
    consistent with any tree (``old_root`` is not compared with ``EMPTY_ROOT``).

    >>> hashes = [leaf_hash(bytes([i])) for i in range(4)]
    >>> old, new = root_from_leaf_hashes(hashes[:3]), root_from_leaf_hashes(hashes)
    >>> verify_consistency(3, 4, old, new, consistency_proof(3, 4, hashes))
    >>> verify_consistency(3, 4, new, new, consistency_proof(3, 4, hashes))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ledger.merkle.RootMismatchError: calculated root ... does not match expected root ...
    """
    _check_sizes(old_size, new_size)
    _check_hash("the old root", old_root)
    _check_hash("the new root", new_root)
    expected_length = consistency_proof_length(old_size, new_size)
    if len(proof) != expected_length:
        raise InvalidProofError(
            f"a consistency proof from size {old_size} to size {new_size} has "
            f"{expected_length} hashes, this one has {len(proof)}"
        )
    for i, p in enumerate(proof):
        _check_hash(f"consistency proof hash {i}", p)
    if old_size == new_size:
        if old_root != new_root:
            raise RootMismatchError(expected=new_root, calculated=old_root)
        return
    if old_size == 0:
        return

    # RFC 9162 2.1.4.2.
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check; kept as the RFC states it
            raise InvalidProofError(f"consistency proof too long for {old_size} -> {new_size}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check
        raise InvalidProofError(f"consistency proof too short for {old_size} -> {new_size}")
    if fr != old_root:
        raise RootMismatchError(expected=old_root, calculated=fr)
    if sr != new_root:
        raise RootMismatchError(expected=new_root, calculated=sr)
