"""Unit and property tests of ledger/merkle.py: RFC 9162 section 2.1 Merkle trees and proofs.

Pure: no database. Three independent checks of the module:

* Known answers: the RFC 6962 test tree of Certificate Transparency, the eight leaf inputs
  ``""``, ``00``, ``10``, ``2021``, ``3031``, ``40414243``, ``5051525354555657`` and
  ``606162636465666768696a6b6c6d6e6f`` (hex), with the roots of the trees of sizes 0..8,
  the hashes of all its perfect subtrees, and inclusion and consistency proofs. They are
  the published reference data of Google's Certificate Transparency implementations:
  certificate-transparency-go/merkletree and transparency-dev/merkle (``testonly/
  constants.go``: ``LeafInputs``, ``NodeHashes``, ``RootHashes``; ``proof/verify_test.go``:
  ``inclusionProofs``, ``consistencyProofs``, whose leaf numbers are 1-based there and
  0-based indexes here). The same negative probes as ``verify_test.go`` are applied.
* A naive reference implementation, written here straight from the recursive definitions
  of RFC 9162 (MTH 2.1.1, PATH 2.1.3.1, PROOF/SUBPROOF 2.1.4.1), with its own hashing,
  compared with the module on every tree size 0..64 and every index and old size; and a
  naive recursive *reconstruction* of the roots a proof gives, compared with the RFC's
  bit-twiddling verifiers on arbitrary proofs.
* Hypothesis properties on trees of up to 300 distinct leaves.
"""

from __future__ import annotations

import doctest
import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledger.merkle
from ledger.errors import LedgerError
from ledger.merkle import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    NODE_PREFIX,
    InvalidProofError,
    ProofError,
    RootMismatchError,
    SubtreeRoot,
    consistency_proof,
    consistency_proof_from,
    consistency_proof_length,
    decompose,
    inclusion_proof,
    inclusion_proof_from,
    inclusion_proof_length,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    root,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    root_from_subtree_roots,
    subtree_root_from_leaf_hashes,
    subtree_root_from_perfect_nodes,
    verify_consistency,
    verify_inclusion,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --- the RFC 6962 test tree (transparency-dev/merkle testonly, certificate-transparency-go) --

LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# ROOTS[n] is the root of the tree of the first n leaf inputs.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# NODE_HASHES[level][i] is the root of the perfect subtree [i * 2**level, (i + 1) * 2**level).
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# (index, size, proof): transparency-dev/merkle proof/verify_test.go inclusionProofs.
INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 8, [NODE_HASHES[0][1], NODE_HASHES[1][1], NODE_HASHES[2][1]]),
    (5, 8, [NODE_HASHES[0][4], NODE_HASHES[1][3], NODE_HASHES[2][0]]),
    (2, 3, [NODE_HASHES[1][0]]),
    (1, 5, [NODE_HASHES[0][0], NODE_HASHES[1][1], NODE_HASHES[0][4]]),
]

# (old_size, new_size, proof): transparency-dev/merkle proof/verify_test.go consistencyProofs.
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, [NODE_HASHES[0][1], NODE_HASHES[1][1], NODE_HASHES[2][1]]),
    (6, 8, [NODE_HASHES[1][2], NODE_HASHES[1][3], NODE_HASHES[2][0]]),
    (2, 5, [NODE_HASHES[1][1], NODE_HASHES[0][4]]),
    (6, 7, [NODE_HASHES[1][2], NODE_HASHES[0][6], NODE_HASHES[2][0]]),
]

# The same vectors written out, as they appear in verify_test.go.
PUBLISHED_HEX = {
    ("inclusion", 0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ("inclusion", 5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    ("consistency", 1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ("consistency", 6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    ("consistency", 2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


# --- the naive reference, straight from RFC 9162 2.1 (its own hashing) --------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_leaf(d: bytes) -> bytes:
    return _sha(b"\x00" + d)


def ref_node(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right)


def ref_split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of leaf data items, RFC 9162 2.1.1."""
    if not d:
        return _sha(b"")
    if len(d) == 1:
        return ref_leaf(d[0])
    k = ref_split(len(d))
    return ref_node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 2.1.3.1."""
    if len(d) == 1:
        return []
    k = ref_split(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 2.1.4.1."""
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = ref_split(len(d))
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m < n, RFC 9162 2.1.4.1."""
    return ref_subproof(m, d, True)


def ref_root_from_path(m: int, n: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root a PATH gives, by undoing PATH's recursion; None if it cannot be a PATH."""
    if n == 1:
        return None if path else leaf
    if not path:
        return None
    k = ref_split(n)
    *rest, last = path
    if m < k:
        inner = ref_root_from_path(m, k, leaf, rest)
        return None if inner is None else ref_node(inner, last)
    inner = ref_root_from_path(m - k, n - k, leaf, rest)
    return None if inner is None else ref_node(last, inner)


def ref_roots_from_proof(
    m: int, n: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes] | None:
    """The (old, new) roots a PROOF (0 < m < n) gives, by undoing SUBPROOF's recursion."""

    def sub(m: int, n: int, b: bool, proof: Sequence[bytes]) -> tuple[bytes, bytes] | None:
        if m == n:
            if b:  # the whole old tree: the verifier knows its root
                return None if proof else (old_root, old_root)
            return (proof[0], proof[0]) if len(proof) == 1 else None
        if not proof:
            return None
        k = ref_split(n)
        *rest, last = proof
        if m <= k:
            inner = sub(m, k, b, rest)
            return None if inner is None else (inner[0], ref_node(inner[1], last))
        inner = sub(m - k, n - k, False, rest)
        if inner is None:
            return None
        return ref_node(last, inner[0]), ref_node(last, inner[1])

    return sub(m, n, True, proof)


def passes(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofError:
        return False
    return True


def leaves_for(size: int, salt: bytes = b"") -> list[bytes]:
    """``size`` distinct 32-byte leaf data items, standing in for event hashes."""
    return [_sha(salt + i.to_bytes(8, "big")) for i in range(size)]


def stored_nodes(leaf_hashes: Sequence[bytes]) -> SubtreeRoot:
    """A stand-in for the store: roots of aligned perfect subtrees, from a level table."""
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def node_root(start: int, end: int) -> bytes:
        width = end - start
        level = width.bit_length() - 1
        assert width == 1 << level and start % width == 0, (start, end)
        return levels[level][start >> level]

    return node_root


# --- module basics ------------------------------------------------------------------------


def test_doctests() -> None:
    result = doctest.testmod(ledger.merkle)
    assert result.failed == 0
    assert result.attempted >= 25


def test_constants_and_hashes() -> None:
    assert (LEAF_PREFIX, NODE_PREFIX) == (b"\x00", b"\x01")
    assert EMPTY_ROOT == _sha(b"") == ROOTS[0]
    assert leaf_hash(b"abc") == _sha(b"\x00abc")
    assert node_hash(b"l" * 32, b"r" * 32) == _sha(b"\x01" + b"l" * 32 + b"r" * 32)


def test_error_tree() -> None:
    assert issubclass(ProofError, LedgerError)
    assert issubclass(ProofError, ValueError)
    assert issubclass(RootMismatchError, ProofError)
    assert issubclass(InvalidProofError, ProofError)


def test_largest_power_of_two_below() -> None:
    for n in range(2, 1100):
        k = largest_power_of_two_below(n)
        assert k == ref_split(n)
        assert k < n <= 2 * k and k & (k - 1) == 0
    for n in (-1, 0, 1):
        with pytest.raises(ValueError, match=str(n)):
            largest_power_of_two_below(n)


# --- known answers -----------------------------------------------------------------------


def test_known_roots() -> None:
    hashes = [leaf_hash(d) for d in LEAF_INPUTS]
    for n in range(9):
        assert root(LEAF_INPUTS[:n]) == ROOTS[n], n
        assert root_from_leaf_hashes(hashes[:n]) == ROOTS[n], n
        assert ref_mth(LEAF_INPUTS[:n]) == ROOTS[n], n


def test_known_node_hashes() -> None:
    for level, row in enumerate(NODE_HASHES):
        width = 1 << level
        for i, expected in enumerate(row):
            assert root(LEAF_INPUTS[i * width : (i + 1) * width]) == expected, (level, i)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_known_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in LEAF_INPUTS[:size]]
    assert inclusion_proof(index, hashes) == proof
    assert ref_path(index, LEAF_INPUTS[:size]) == proof
    assert root_from_inclusion_proof(index, size, hashes[index], proof) == ROOTS[size]
    verify_inclusion(index, size, hashes[index], proof, ROOTS[size])


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS[1:])
def test_known_inclusion_proofs_reject_probes(index: int, size: int, proof: list[bytes]) -> None:
    """verify_test.go corruptInclusionProof: every probe must fail."""
    leaf = leaf_hash(LEAF_INPUTS[index])
    good = ROOTS[size]
    probes: list[tuple[str, int, int, bytes, list[bytes], bytes]] = [
        ("index - 1", index - 1, size, leaf, proof, good),
        ("index + 1", index + 1, size, leaf, proof, good),
        ("index ^ 2", index ^ 2, size, leaf, proof, good),
        ("size * 2", index, size * 2, leaf, proof, good),
        ("size / 2", index, size // 2, leaf, proof, good),
        ("wrong leaf", index, size, b"WrongLeaf", proof, good),
        ("wrong leaf of 32 bytes", index, size, SOME_HASH, proof, good),
        ("empty root", index, size, leaf, proof, EMPTY_ROOT),
        ("random root", index, size, leaf, proof, SOME_HASH),
        ("trailing garbage", index, size, leaf, [*proof, b""], good),
        ("trailing root", index, size, leaf, [*proof, good], good),
        ("preceding garbage", index, size, leaf, [b"", *proof], good),
        ("preceding root", index, size, leaf, [good, *proof], good),
        ("removed component", index, size, leaf, proof[:-1], good),
        ("inserted component", index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], good),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 3", index, size, leaf, wrong, good))
    for desc, i, n, leaf_, proof_, root_ in probes:
        with pytest.raises(ProofError):
            verify_inclusion(i, n, leaf_, proof_, root_)
            pytest.fail(desc)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_known_consistency_proofs(old: int, new: int, proof: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in LEAF_INPUTS[:new]]
    assert consistency_proof(old, new, hashes) == proof
    if old < new:
        assert ref_proof(old, LEAF_INPUTS[:new]) == proof
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS[1:])
def test_known_consistency_proofs_reject_probes(old: int, new: int, proof: list[bytes]) -> None:
    """verify_test.go corruptConsistencyProof: every probe must fail."""
    r1, r2 = ROOTS[old], ROOTS[new]
    probes: list[tuple[str, int, int, bytes, bytes, list[bytes]]] = [
        ("old - 1", old - 1, new, r1, r2, proof),
        ("old + 1", old + 1, new, r1, r2, proof),
        ("old ^ 2", old ^ 2, new, r1, r2, proof),
        ("new * 2", old, new * 2, r1, r2, proof),
        ("new / 2", old, new // 2, r1, r2, proof),
        ("wrong old root", old, new, b"WrongRoot", r2, proof),
        ("wrong new root", old, new, r1, b"WrongRoot", proof),
        ("wrong old root of 32 bytes", old, new, SOME_HASH, r2, proof),
        ("wrong new root of 32 bytes", old, new, r1, SOME_HASH, proof),
        ("swapped roots", old, new, r2, r1, proof),
        ("empty proof", old, new, r1, r2, []),
        ("trailing garbage", old, new, r1, r2, [*proof, b""]),
        ("trailing old root", old, new, r1, r2, [*proof, r1]),
        ("trailing new root", old, new, r1, r2, [*proof, r2]),
        ("preceding garbage", old, new, r1, r2, [b"", *proof]),
        ("preceding old root", old, new, r1, r2, [r1, *proof]),
        ("preceding new root", old, new, r1, r2, [r2, *proof]),
        ("preceding proof[0]", old, new, r1, r2, [proof[0], *proof]),
        ("truncated proof", old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 4", old, new, r1, r2, wrong))
    for desc, m, n, root1, root2, proof_ in probes:
        with pytest.raises(ProofError):
            verify_consistency(m, n, root1, root2, proof_)
            pytest.fail(desc)


def test_published_vectors_written_out() -> None:
    """The vectors above, as hex, against the proofs the module generates."""
    hashes = [leaf_hash(d) for d in LEAF_INPUTS]
    for (kind, a, b), expected in PUBLISHED_HEX.items():
        if kind == "inclusion":
            proof = inclusion_proof(a, hashes[:b])
        else:
            proof = consistency_proof(a, b, hashes[:b])
        assert [p.hex() for p in proof] == expected, (kind, a, b)


R1, R2 = _sha(b"root 1"), _sha(b"root 2")


@pytest.mark.parametrize(
    ("old", "new", "root1", "root2", "proof", "ok"),
    [
        # verify_test.go TestVerifyConsistency, with 32-byte stand-in roots.
        (0, 0, R1, R2, [], False),
        (1, 1, R1, R2, [], False),
        (0, 0, R1, R1, [], True),
        (0, 1, R1, R2, [], True),
        (1, 1, R2, R2, [], True),
        (1, 0, R1, R2, [], False),
        (2, 1, R1, R2, [], False),
        (1, 2, R1, R2, [], False),
        (0, 0, EMPTY_ROOT, R2, [], False),
        (1, 1, EMPTY_ROOT, R2, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (-1, 1, R1, R2, [], False),
    ],
)
def test_consistency_trivial_cases(
    old: int, new: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    assert passes(lambda: verify_consistency(old, new, root1, root2, proof)) is ok


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1), (-1, 1)])
def test_inclusion_degenerate_probes(index: int, size: int) -> None:
    """verify_test.go TestVerifyInclusion: none of these verify."""
    for leaf, root_ in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, [], root_)


def test_single_entry_tree() -> None:
    """verify_test.go TestVerifyInclusionSingleEntry."""
    hashed = leaf_hash(b"data")
    verify_inclusion(0, 1, hashed, [], hashed)
    for leaf, root_ in [(b"", hashed), (hashed, b""), (b"", b"")]:
        with pytest.raises(InvalidProofError):
            verify_inclusion(0, 1, leaf, [], root_)


# --- error messages ----------------------------------------------------------------------


def test_root_mismatch_message_names_both_roots() -> None:
    hashes = [leaf_hash(d) for d in LEAF_INPUTS]
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(5, 8, hashes[5], inclusion_proof(5, hashes), ROOTS[7])
    assert caught.value.expected == ROOTS[7]
    assert caught.value.calculated == ROOTS[8]
    assert str(caught.value) == (
        f"calculated root {ROOTS[8].hex()} does not match expected root {ROOTS[7].hex()}"
    )

    proof = consistency_proof(6, 8, hashes)
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(6, 8, ROOTS[6], ROOTS[7], proof)
    assert (caught.value.expected, caught.value.calculated) == (ROOTS[7], ROOTS[8])
    assert str(caught.value) == (
        f"calculated root {ROOTS[8].hex()} does not match expected root {ROOTS[7].hex()}"
    )
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(6, 8, ROOTS[5], ROOTS[8], proof)
    assert (caught.value.expected, caught.value.calculated) == (ROOTS[5], ROOTS[6])
    with pytest.raises(RootMismatchError, match=f"calculated root {ROOTS[3].hex()} does not"):
        verify_consistency(3, 3, ROOTS[3], ROOTS[4], [])


def test_invalid_proof_messages_name_the_values() -> None:
    hashes = [leaf_hash(d) for d in LEAF_INPUTS]
    with pytest.raises(InvalidProofError, match="index 8 is not in a tree of size 8"):
        verify_inclusion(8, 8, hashes[0], [], ROOTS[8])
    with pytest.raises(InvalidProofError, match="index 8 is not in a tree of size 8"):
        inclusion_proof(8, hashes)
    with pytest.raises(InvalidProofError, match="index -1 is not in a tree of size 8"):
        inclusion_proof_from(-1, 8, subtree_root_from_leaf_hashes(hashes))
    with pytest.raises(
        InvalidProofError, match="index 5 in a tree of size 8 has 3 hashes, this one has 2"
    ):
        verify_inclusion(5, 8, hashes[5], inclusion_proof(5, hashes)[:2], ROOTS[8])
    with pytest.raises(InvalidProofError, match="old size 5 and new size 4"):
        verify_consistency(5, 4, ROOTS[5], ROOTS[4], [])
    with pytest.raises(InvalidProofError, match="old size 5 and new size 4"):
        consistency_proof(5, 4, hashes)
    with pytest.raises(InvalidProofError, match="new size 9 is more than the 8 leaves"):
        consistency_proof(5, 9, hashes)
    with pytest.raises(
        InvalidProofError, match="from size 2 to size 5 has 2 hashes, this one has 0"
    ):
        verify_consistency(2, 5, ROOTS[2], ROOTS[5], [])
    with pytest.raises(InvalidProofError, match="consistency proof hash 1 is 31 bytes, not 32"):
        verify_consistency(2, 5, ROOTS[2], ROOTS[5], [hashes[0], hashes[0][:31]])
    with pytest.raises(InvalidProofError, match="the new root is 0 bytes, not 32"):
        verify_consistency(2, 5, ROOTS[2], b"", [])
    with pytest.raises(InvalidProofError, match="the leaf hash is 9 bytes, not 32"):
        verify_inclusion(0, 1, b"WrongLeaf", [], ROOTS[1])


# --- against the naive reference, every size 0..64 ---------------------------------------

SMALL_SIZES = range(65)
SMALL_DATA = leaves_for(64, b"small")
SMALL_HASHES = [leaf_hash(d) for d in SMALL_DATA]


def test_roots_match_reference() -> None:
    for n in SMALL_SIZES:
        expected = ref_mth(SMALL_DATA[:n])
        assert root(SMALL_DATA[:n]) == expected, n
        assert root_from_leaf_hashes(SMALL_HASHES[:n]) == expected, n
        if n:
            from_nodes = subtree_root_from_perfect_nodes(stored_nodes(SMALL_HASHES))
            assert from_nodes(0, n) == expected, n


def test_perfect_subtrees_fold_to_the_root() -> None:
    """MTH(n) == root_from_subtree_roots([MTH(s) for s in perfect_subtrees(n)])."""
    for n in SMALL_SIZES:
        subtrees = perfect_subtrees(n)
        widths = [end - start for start, end in subtrees]
        assert sum(widths) == n and widths == sorted(widths, reverse=True)
        assert all(w & (w - 1) == 0 for w in widths) and len(set(widths)) == len(widths)
        assert [s for s, _ in subtrees] == [0, *(e for _, e in subtrees)][: len(subtrees)]
        roots = [ref_mth(SMALL_DATA[s:e]) for s, e in subtrees]
        assert root_from_subtree_roots(roots) == ref_mth(SMALL_DATA[:n]), n
    with pytest.raises(ValueError):
        perfect_subtrees(-1)


def test_decompose() -> None:
    for start in range(0, 70):
        for end in range(start, 70):
            parts = decompose(start, end)
            assert [s for s, _ in parts] == [start, *(e for _, e in parts)][: len(parts)]
            assert (parts[-1][1] if parts else start) == end
            for s, e in parts:
                w = e - s
                assert w & (w - 1) == 0 and s % w == 0, (start, end, s, e)
            # Fewest parts: no two neighbours merge into one aligned perfect subtree.
            for (s1, e1), (s2, e2) in zip(parts, parts[1:], strict=False):
                assert not (e1 - s1 == e2 - s2 and s1 % (2 * (e1 - s1)) == 0)
    for n in SMALL_SIZES:
        assert decompose(0, n) == perfect_subtrees(n)
        # A node of the tree: [n * 64, n * 65) starts at a multiple of a power of two >= n.
        shifted = [(s + n * 64, e + n * 64) for s, e in perfect_subtrees(n)]
        assert decompose(n * 64, n * 65) == shifted
    with pytest.raises(ValueError):
        decompose(3, 2)


def test_inclusion_proofs_match_reference() -> None:
    for n in SMALL_SIZES:
        expected_root = ref_mth(SMALL_DATA[:n])
        for m in range(n):
            proof = inclusion_proof(m, SMALL_HASHES[:n])
            assert proof == ref_path(m, SMALL_DATA[:n]), (m, n)
            assert len(proof) == inclusion_proof_length(m, n)
            assert root_from_inclusion_proof(m, n, SMALL_HASHES[m], proof) == expected_root
            verify_inclusion(m, n, SMALL_HASHES[m], proof, expected_root)


def test_consistency_proofs_match_reference() -> None:
    for n in SMALL_SIZES:
        new_root = ref_mth(SMALL_DATA[:n])
        for m in range(n + 1):
            proof = consistency_proof(m, n, SMALL_HASHES[:n])
            assert proof == (ref_proof(m, SMALL_DATA[:n]) if 0 < m < n else []), (m, n)
            assert len(proof) == consistency_proof_length(m, n)
            verify_consistency(m, n, ref_mth(SMALL_DATA[:m]), new_root, proof)


def test_verifiers_match_reference_reconstruction_on_arbitrary_proofs() -> None:
    """The RFC's bit-twiddling verifiers compute what undoing PATH / SUBPROOF computes,
    for any proof hashes of the right count, not only for proofs of real trees."""
    junk = [_sha(b"junk" + bytes([i])) for i in range(16)]
    for n in range(1, 65):
        for m in range(n):
            path = junk[: inclusion_proof_length(m, n)]
            expected = ref_root_from_path(m, n, SMALL_HASHES[m], path)
            assert expected is not None
            assert root_from_inclusion_proof(m, n, SMALL_HASHES[m], path) == expected
            verify_inclusion(m, n, SMALL_HASHES[m], path, expected)
        for m in range(1, n):
            proof = junk[: consistency_proof_length(m, n)]
            old_root = _sha(b"old")
            roots = ref_roots_from_proof(m, n, old_root, proof)
            assert roots is not None
            verify_consistency(m, n, roots[0], roots[1], proof)
            if m & (m - 1) == 0:
                assert roots[0] == old_root


def test_generators_ask_only_for_tree_nodes() -> None:
    """Every range a generator asks subtree_root for is a node of the tree, so a store
    answers it from stored perfect subtrees (subtree_root_from_perfect_nodes)."""
    asked: list[tuple[int, int]] = []
    naive = subtree_root_from_leaf_hashes(SMALL_HASHES)

    def recording(start: int, end: int) -> bytes:
        asked.append((start, end))
        return naive(start, end)

    from_nodes = subtree_root_from_perfect_nodes(stored_nodes(SMALL_HASHES))
    for n in SMALL_SIZES:
        for m in range(n):
            assert inclusion_proof_from(m, n, recording) == inclusion_proof_from(m, n, from_nodes)
        for m in range(n + 1):
            assert consistency_proof_from(m, n, recording) == consistency_proof_from(
                m, n, from_nodes
            )
    for start, end in set(asked):
        width = 1 << (end - start - 1).bit_length()
        assert 0 <= start < end <= 64 and start % width == 0, (start, end)
    with pytest.raises(ValueError, match="not a node"):
        from_nodes(1, 3)
    with pytest.raises(ValueError):
        from_nodes(3, 3)


def test_same_shape_sizes_are_indistinguishable() -> None:
    """RFC 9162 proofs authenticate the size only through the shape of the path: index 0
    in trees of 3 and 4 leaves has the same shape, so a proof for size 4 also "verifies"
    against the same root with size 3. The size must come from the signed tree head."""
    proof = inclusion_proof(0, SMALL_HASHES[:4])
    verify_inclusion(0, 4, SMALL_HASHES[0], proof, ref_mth(SMALL_DATA[:4]))
    verify_inclusion(0, 3, SMALL_HASHES[0], proof, ref_mth(SMALL_DATA[:4]))


# --- hypothesis properties ---------------------------------------------------------------

trees = st.builds(leaves_for, st.integers(min_value=1, max_value=300), st.binary(max_size=8))
heavy = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])


def flips(value: bytes) -> list[bytes]:
    """``value`` with each one of its bits flipped."""
    out = []
    for i in range(len(value) * 8):
        b = bytearray(value)
        b[i // 8] ^= 1 << (i % 8)
        out.append(bytes(b))
    return out


@heavy
@given(trees)
def test_every_inclusion_proof_verifies(data: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in data]
    n, expected = len(hashes), root_from_leaf_hashes(hashes)
    subtree_root = subtree_root_from_perfect_nodes(stored_nodes(hashes))
    assert subtree_root(0, n) == expected == ref_mth(data)
    for m in range(n):
        verify_inclusion(m, n, hashes[m], inclusion_proof_from(m, n, subtree_root), expected)


@heavy
@given(trees)
def test_every_consistency_proof_verifies(data: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in data]
    n = len(hashes)
    subtree_root = subtree_root_from_perfect_nodes(stored_nodes(hashes))
    new_root = subtree_root(0, n)
    for m in range(n + 1):
        old_root = subtree_root(0, m) if m else EMPTY_ROOT
        verify_consistency(m, n, old_root, new_root, consistency_proof_from(m, n, subtree_root))


@heavy
@given(trees, st.data())
def test_callable_generators_equal_list_generators(data: list[bytes], draw: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in data]
    n = len(hashes)
    m = draw.draw(st.integers(0, n - 1))
    old = draw.draw(st.integers(0, n))
    from_nodes = subtree_root_from_perfect_nodes(stored_nodes(hashes))
    naive = subtree_root_from_leaf_hashes(hashes)
    assert inclusion_proof(m, hashes) == inclusion_proof_from(m, n, from_nodes)
    assert inclusion_proof(m, hashes) == inclusion_proof_from(m, n, naive)
    assert consistency_proof(old, n, hashes) == consistency_proof_from(old, n, from_nodes)
    assert consistency_proof(old, n, hashes) == consistency_proof_from(old, n, naive)


@heavy
@given(trees, st.data())
def test_inclusion_rejects_any_flipped_bit(data: list[bytes], draw: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in data]
    n = len(hashes)
    m = draw.draw(st.integers(0, n - 1))
    proof, expected = inclusion_proof(m, hashes), root_from_leaf_hashes(hashes)
    verify_inclusion(m, n, hashes[m], proof, expected)
    for i, element in enumerate(proof):
        for bad in flips(element):
            with pytest.raises(RootMismatchError):
                verify_inclusion(m, n, hashes[m], [*proof[:i], bad, *proof[i + 1 :]], expected)
    for bad in flips(hashes[m]):
        with pytest.raises(RootMismatchError):
            verify_inclusion(m, n, bad, proof, expected)
    for bad in flips(expected):
        with pytest.raises(RootMismatchError) as caught:
            verify_inclusion(m, n, hashes[m], proof, bad)
        assert caught.value.calculated == expected and caught.value.expected == bad


@heavy
@given(trees, st.data())
def test_consistency_rejects_any_flipped_bit(data: list[bytes], draw: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in data]
    n = len(hashes)
    old = draw.draw(st.integers(0, n))
    proof = consistency_proof(old, n, hashes)
    old_root, new_root = root_from_leaf_hashes(hashes[:old]), root_from_leaf_hashes(hashes)
    verify_consistency(old, n, old_root, new_root, proof)
    for i, element in enumerate(proof):
        for bad in flips(element):
            with pytest.raises(RootMismatchError):
                verify_consistency(old, n, old_root, new_root, [*proof[:i], bad, *proof[i + 1 :]])
    if old == 0:  # an empty tree is consistent with any tree: no root is compared
        verify_consistency(old, n, flips(old_root)[0], flips(new_root)[0], proof)
        return
    for bad in flips(new_root):
        with pytest.raises(RootMismatchError):
            verify_consistency(old, n, old_root, bad, proof)
    for bad in flips(old_root):
        with pytest.raises(RootMismatchError):
            verify_consistency(old, n, bad, new_root, proof)


@heavy
@given(trees, st.data())
def test_inclusion_proof_for_another_index_or_size_fails(
    data: list[bytes], draw: st.DataObject
) -> None:
    hashes = [leaf_hash(d) for d in data]
    n = len(hashes)
    m = draw.draw(st.integers(0, n - 1))
    proof, expected = inclusion_proof(m, hashes), root_from_leaf_hashes(hashes)
    # Another index of the same tree: never (the leaves are distinct).
    for other in {m - 1, m + 1, m ^ 1, m ^ 2, draw.draw(st.integers(0, n - 1))} - {m}:
        if 0 <= other < n:
            with pytest.raises(ProofError):
                verify_inclusion(other, n, hashes[m], proof, expected)
            with pytest.raises(ProofError):
                verify_inclusion(other, n, hashes[other], proof, expected)
    # Another size: exactly when the naive reconstruction says so (a size whose path has
    # the same shape gives the same root, see test_same_shape_sizes_are_indistinguishable).
    for size in {n - 1, n + 1, n * 2, n // 2, draw.draw(st.integers(1, 600))} - {n}:
        if m < size:
            reconstructed = ref_root_from_path(m, size, hashes[m], proof)
            ok = passes(lambda size=size: verify_inclusion(m, size, hashes[m], proof, expected))
            assert ok is (reconstructed == expected), (m, n, size)
    # Twice the size always needs one more hash.
    with pytest.raises(InvalidProofError):
        verify_inclusion(m, n * 2, hashes[m], proof, expected)


@heavy
@given(trees, st.data())
def test_consistency_proof_for_other_sizes_fails(data: list[bytes], draw: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in data]
    n = len(hashes)
    if n < 2:
        return
    old = draw.draw(st.integers(1, n - 1))
    proof = consistency_proof(old, n, hashes)
    old_root, new_root = root_from_leaf_hashes(hashes[:old]), root_from_leaf_hashes(hashes)
    verify_consistency(old, n, old_root, new_root, proof)
    with pytest.raises(RootMismatchError):
        verify_consistency(old, n, new_root, old_root, proof)
    with pytest.raises(InvalidProofError):
        verify_consistency(old, n, old_root, new_root, [])
    others = {
        (old - 1, n),
        (old + 1, n),
        (old ^ 2, n),
        (old, n * 2),
        (old, n // 2),
        (old, n + 1),
        (draw.draw(st.integers(1, 600)), draw.draw(st.integers(1, 600))),
    } - {(old, n)}
    for m, size in others:
        if 0 < m < size:
            # Exactly what undoing SUBPROOF for (m, size) gives.
            roots = ref_roots_from_proof(m, size, old_root, proof)
            ok = passes(
                lambda m=m, size=size: verify_consistency(m, size, old_root, new_root, proof)
            )
            assert ok is (roots == (old_root, new_root)), (old, n, m, size)
        else:
            with pytest.raises(ProofError):
                verify_consistency(m, size, old_root, new_root, proof)
