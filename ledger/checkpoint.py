"""Signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint).

A signed note is a text ending in a newline, a blank line, and one or more
signature lines ``— <key name> <base64(4-byte key ID ‖ signature)>``; the text may
itself contain blank lines, it ends at the *last* blank line. A note is valid UTF-8
with no ASCII control character other than newline. The Ed25519 signature covers
the text, final newline included.

A checkpoint is a note whose text is the log's head::

    regledger.example/ledger/prod          origin: names the log
    8                                      tree size, decimal, no leading zeros
    XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=    root hash, base64 of 32 bytes
    <extension lines, optional, opaque, non-empty>

Verification follows the spec: signatures by unknown keys (unknown name, or known
name with another key ID) are ignored; a signature by a known key must verify or
the whole note is rejected; at least one known key must have signed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import LedgerError
from .keys import KeyFormatError, SignerKey, VerifierKey, is_valid_key_name

__all__ = [
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "CheckpointError",
    "NoteSignature",
    "SignatureError",
    "open_note",
    "sign_checkpoint",
    "sign_note",
    "split_note",
    "verify_checkpoint",
]

MAX_SIGNATURES = 100
"""Notes with more signature lines are rejected (signed-note: at least 16 must be accepted)."""

MAX_TREE_SIZE = 2**64 - 1
"""Tree sizes are unsigned 64-bit integers (RFC 6962)."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_DIGITS = frozenset("0123456789")


class SignatureError(LedgerError):
    """A note is malformed, no known key signed it, or a known key's signature is bad.

    ``unknown`` lists the ``name+keyid`` labels of signatures by keys not configured.
    """

    def __init__(self, message: str, *, unknown: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.unknown = tuple(unknown)


class CheckpointError(LedgerError, ValueError):
    """A checkpoint text is malformed, or is not of the expected origin."""


def _text_problem(text: str) -> str | None:
    """Why ``text`` may not appear in a note, or None: valid UTF-8, no control but newline."""
    for number, line in enumerate(text.split("\n"), start=1):
        for ch in line:
            if ch < " ":
                hint = " (only \\n line endings are allowed)" if ch == "\r" else ""
                return f"line {number} contains control character U+{ord(ch):04X}{hint}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid UTF-8 ({exc.reason})"
    return None


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note, not (yet) verified."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def label(self) -> str:
        """``<name>+<key ID hex>``."""
        return f"{self.name}+{self.key_id.hex()}"

    def line(self) -> str:
        """The signature line, newline included."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {blob}\n"


def split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """The text and the signature lines of ``note``, nothing verified.

    SignatureError if the note is malformed: not UTF-8, a control character, no blank
    line before the signatures, a signature line not ``— <name> <base64>``, a
    signature shorter than a key ID and one byte, or more than MAX_SIGNATURES.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SignatureError(f"malformed note: not valid UTF-8 ({exc.reason})") from None
    if not isinstance(note, str):
        raise TypeError(f"a note is text, not {type(note).__name__}")
    problem = _text_problem(note)
    if problem is not None:
        raise SignatureError(f"malformed note: {problem}")
    split = note.rfind("\n\n")
    if split < 0:
        raise SignatureError("malformed note: no blank line separates the text from signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise SignatureError("malformed note: no signature line after the blank line")
    if not block.endswith("\n"):
        raise SignatureError("malformed note: the last signature line does not end in newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise SignatureError(
            f"malformed note: {len(lines)} signature lines, more than {MAX_SIGNATURES}"
        )
    signatures: list[NoteSignature] = []
    for number, line in enumerate(lines, start=1):
        where = f"malformed note: signature line {number}"
        if not line.startswith(_SIG_PREFIX):
            raise SignatureError(f"{where} does not start with an em dash and a space")
        name, space, blob = line[len(_SIG_PREFIX) :].partition(" ")
        if not space:
            raise SignatureError(f"{where} is not '\u2014 <key name> <base64 signature>'")
        if not is_valid_key_name(name):
            raise SignatureError(f"{where}: key name {name!r} is not a valid key name")
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError(f"{where} ({name}): signature is not valid base64") from None
        if len(raw) < 5:
            raise SignatureError(f"{where} ({name}): signature is shorter than 5 bytes")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return text, signatures


def sign_note(text: str, signers: Iterable[SignerKey]) -> str:
    """``text`` signed by each of ``signers``: the text, a blank line, one line per key.

    ValueError if ``text`` is empty, does not end in a newline, or has a control
    character other than newline; or if there is no signer.
    """
    if not isinstance(text, str):
        raise TypeError(f"a note text is text, not {type(text).__name__}")
    if not text.endswith("\n"):
        raise ValueError("a note text must be non-empty and end with a newline")
    problem = _text_problem(text)
    if problem is not None:
        raise ValueError(f"note text: {problem}")
    message = text.encode("utf-8")
    lines: dict[tuple[str, bytes], str] = {}
    for signer in signers:
        if not isinstance(signer, SignerKey):
            raise TypeError(f"signers must be SignerKey, not {type(signer).__name__}")
        signature = NoteSignature(signer.name, signer.key_id, signer.sign(message))
        lines.setdefault((signer.name, signer.key_id), signature.line())
    if not lines:
        raise ValueError("a note needs at least one signer")
    if len(lines) > MAX_SIGNATURES:
        raise ValueError(f"more than {MAX_SIGNATURES} signers")
    return text + "\n" + "".join(lines.values())


def _known(verifiers: Iterable[VerifierKey]) -> dict[tuple[str, bytes], VerifierKey]:
    known: dict[tuple[str, bytes], VerifierKey] = {}
    for key in verifiers:
        if not isinstance(key, VerifierKey):
            raise TypeError(f"verifiers must be VerifierKey, not {type(key).__name__}")
        if known.setdefault((key.name, key.key_id), key) != key:
            raise KeyFormatError(f"two different verifier keys are both {key.label}")
    return known


def open_note(note: str | bytes, verifiers: Iterable[VerifierKey]) -> tuple[str, list[str]]:
    """The text of ``note`` and the names of the known keys whose signatures verified.

    Signatures by unknown keys (unknown name, or a known name with another key ID)
    are skipped. SignatureError if the note is malformed, if a signature by a known
    key does not verify (the message names the key), or if no known key signed it
    (the error's ``unknown`` lists the keys that did).
    """
    known = _known(verifiers)
    text, signatures = split_note(note)
    message = text.encode("utf-8")
    verified: list[str] = []
    checked: set[tuple[str, bytes]] = set()
    unknown: list[str] = []
    for signature in signatures:
        ident = (signature.name, signature.key_id)
        key = known.get(ident)
        if key is None:
            if signature.label not in unknown:
                unknown.append(signature.label)
            continue
        if ident in checked:  # a repeated signature by one key counts once
            continue
        checked.add(ident)
        if not key.verify(message, signature.signature):
            raise SignatureError(
                f"the signature by known key {key.label} does not verify", unknown=unknown
            )
        if key.name not in verified:
            verified.append(key.name)
    if not verified:
        signed_by = ", ".join(unknown) or "none"
        trusted = ", ".join(sorted(k.label for k in known.values())) or "none configured"
        raise SignatureError(
            f"no known key signed the note (signed by unknown keys: {signed_by}; "
            f"known keys: {trusted})",
            unknown=unknown,
        )
    return text, verified


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed head: origin, tree size, Merkle root and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for number, line, what in [(1, self.origin, "origin")] + [
            (n, ext, "extension line") for n, ext in enumerate(self.extensions, start=4)
        ]:
            if not isinstance(line, str):
                raise CheckpointError(f"checkpoint line {number} ({what}) must be text")
            self._check_line(number, what, line)
            if "\n" in line:
                raise CheckpointError(f"checkpoint line {number} ({what}) contains a newline")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError(f"checkpoint tree size must be an int, not {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint tree size {self.size} is not in [0, 2^64)")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            shown = len(self.root) if isinstance(self.root, bytes) else type(self.root).__name__
            raise CheckpointError(f"checkpoint root hash must be 32 bytes, got {shown}")

    @staticmethod
    def _check_line(number: int, what: str, line: str) -> None:
        if not line:
            raise CheckpointError(f"checkpoint line {number} ({what}) is empty")
        for ch in line:
            if ch < " " and ch != "\n":
                hint = " (only \\n line endings are allowed)" if ch == "\r" else ""
                raise CheckpointError(
                    f"checkpoint line {number} ({what}) contains control character "
                    f"U+{ord(ch):04X}{hint}"
                )
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            raise CheckpointError(f"checkpoint line {number} ({what}) is not valid UTF-8") from None

    def text(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in newline."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The checkpoint whose note text is exactly ``text``; CheckpointError names the line."""
        if not isinstance(text, str):
            raise TypeError(f"a checkpoint text is text, not {type(text).__name__}")
        if not text:
            raise CheckpointError("checkpoint text is empty")
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        names = ["origin", "tree size", "root hash"]
        for number, line in enumerate(lines, start=1):
            what = names[number - 1] if number <= 3 else "extension line"
            cls._check_line(number, what, line)
        if len(lines) < 3:
            raise CheckpointError(
                f"checkpoint text has {len(lines)} line(s); it needs origin, tree size and "
                "root hash"
            )
        origin, size_text, root_text, *extensions = lines
        if not set(size_text) <= _DIGITS:
            raise CheckpointError(
                f"checkpoint line 2 (tree size): {size_text!r} is not a decimal number"
            )
        if size_text != "0" and size_text.startswith("0"):
            raise CheckpointError(
                f"checkpoint line 2 (tree size): {size_text!r} has a leading zero"
            )
        if len(size_text) > len(str(MAX_TREE_SIZE)) or int(size_text) > MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint line 2 (tree size): {size_text} is 2^64 or more")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError("checkpoint line 3 (root hash): not valid base64") from None
        if len(root) != 32:
            raise CheckpointError(
                f"checkpoint line 3 (root hash): {len(root)} bytes, a SHA-256 root is 32"
            )
        if base64.b64encode(root).decode("ascii") != root_text:
            raise CheckpointError("checkpoint line 3 (root hash): not canonical base64")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Iterable[SignerKey]) -> str:
    """The signed note of ``checkpoint`` (the log's key name should be its origin)."""
    return sign_note(checkpoint.text(), signers)


def verify_checkpoint(
    note: str | bytes, verifiers: Iterable[VerifierKey], origin: str | None = None
) -> Checkpoint:
    """The checkpoint in ``note``, once a known key's signature on it verified.

    SignatureError as for ``open_note``; CheckpointError if the verified text is not
    a checkpoint, or if ``origin`` is given and the checkpoint is of another log.
    """
    text, _ = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    return checkpoint
