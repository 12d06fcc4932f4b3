"""Ed25519 note keys in the c2sp.org/signed-note encodings.

A key is named (``regledger.example/ledger/prod``) and identified by its name and a
4-byte key ID, the first four bytes of ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)``
(``0x01`` is the Ed25519 signature type). The text encodings are those of the Go
``golang.org/x/mod/sumdb/note`` package::

    verifier key   <name>+<key ID, 8 hex digits>+<base64(0x01 ‖ 32-byte public key)>
    signer key     PRIVATE+KEY+<name>+<key ID>+<base64(0x01 ‖ 32-byte Ed25519 seed)>

Verifier keys are public and go to auditors; several can be configured at once
(``verifiers_from``) so a key can be rotated without breaking verification. A
signer key is read from a file (``signer_from_file``) or from the environment
(``signer_from_env``) and written only to a new file of mode 0600 (``write_signer``).

>>> signer = SignerKey.from_seed("regledger.test", bytes(range(32)))
>>> signer.verifier().encode()
'regledger.test+b891ab6a+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4'
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import os
import string
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .errors import ConfigurationError, LedgerError

__all__ = [
    "ED25519",
    "SIGNING_KEY_ENV",
    "KeyFormatError",
    "SignerKey",
    "VerifierKey",
    "generate",
    "is_valid_key_name",
    "key_id",
    "load_signer",
    "signer_from_env",
    "signer_from_file",
    "verifiers_from",
    "write_signer",
]

ED25519 = 0x01
"""The signed-note signature type byte of Ed25519."""

SIGNING_KEY_ENV = "REGLEDGER_SIGNING_KEY"
"""The environment variable ``signer_from_env`` reads by default."""

_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HEX = frozenset(string.hexdigits)


class KeyFormatError(LedgerError, ValueError):
    """A key name, verifier key or signer key is malformed or inconsistent."""


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` is a valid signed-note key name.

    Non-empty, valid UTF-8, no Unicode spaces, no ``+`` (signed-note); also no
    ASCII control characters, which a note may not contain anywhere.

    >>> [is_valid_key_name(n) for n in ("example.com/log", "", "a b", "a+b", "a\\u00a0b")]
    [True, False, False, False, False]
    """
    if not isinstance(name, str) or not name or "+" in name:
        return False
    if any(ch.isspace() or ch < " " for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def key_id(name: str, public_bytes: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 key: ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``."""
    if not is_valid_key_name(name):
        raise KeyFormatError(f"key name {name!r}: must be non-empty, without spaces or '+'")
    if len(public_bytes) != 32:
        raise KeyFormatError(f"Ed25519 public key must be 32 bytes, got {len(public_bytes)}")
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public_bytes)
    return digest.digest()[:4]


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _shown(text: str, fields: int) -> str:
    """The first ``fields`` ``+``-separated fields of a key text, never its key material."""
    parts = text.split("+", fields)
    head = "+".join(parts[:fields])
    if len(head) > 80:
        head = head[:77] + "..."
    return repr(head + ("+..." if len(parts) > fields else ""))


def _decode_key(what: str, hash16: str, key64: str) -> tuple[bytes, bytes]:
    """The key ID and the 32 key bytes of ``<hash16>+<key64>``; KeyFormatError if malformed."""
    if len(hash16) != 8 or not set(hash16) <= _HEX:
        raise KeyFormatError(f"{what}: key ID must be 8 hex digits, got {hash16!r}")
    try:
        raw = base64.b64decode(key64, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{what}: key is not valid base64") from None
    if not raw:
        raise KeyFormatError(f"{what}: key is empty")
    if raw[0] != ED25519:
        raise KeyFormatError(
            f"{what}: unsupported signature type 0x{raw[0]:02x} (only Ed25519, 0x01)"
        )
    if len(raw) != 33:
        raise KeyFormatError(f"{what}: Ed25519 key must be 32 bytes, got {len(raw) - 1}")
    return bytes.fromhex(hash16), raw[1:]


@dataclass(frozen=True, eq=False)
class VerifierKey:
    """A public Ed25519 note key: name, key ID and public key, consistent by construction."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, Ed25519PublicKey):
            raise TypeError("public_key must be an Ed25519PublicKey")
        expected = key_id(self.name, _public_bytes(self.public_key))
        if self.key_id != expected:
            raise KeyFormatError(
                f"verifier key {self.name!r}: key ID {bytes(self.key_id).hex()} "
                "does not match the public key"
            )

    @classmethod
    def from_public_bytes(cls, name: str, public_bytes: bytes) -> VerifierKey:
        """The verifier key ``name`` for a raw 32-byte Ed25519 public key."""
        ident = key_id(name, public_bytes)
        return cls(name, ident, Ed25519PublicKey.from_public_bytes(public_bytes))

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return _public_bytes(self.public_key)

    @property
    def label(self) -> str:
        """``<name>+<key ID hex>``: how notes and error messages identify the key."""
        return f"{self.name}+{self.key_id.hex()}"

    def encode(self) -> str:
        """``<name>+<key ID hex>+<base64(0x01 ‖ public key)>``."""
        blob = base64.b64encode(bytes([ED25519]) + self.public_bytes).decode("ascii")
        return f"{self.label}+{blob}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Decode ``<name>+<key ID hex>+<base64(0x01 ‖ public key)>``.

        KeyFormatError names the fault.
        """
        if not isinstance(text, str):
            raise KeyFormatError(f"verifier key must be text, not {type(text).__name__}")
        what = f"verifier key {_shown(text, 2)}"
        if text.startswith(_PRIVATE_PREFIX):
            raise KeyFormatError("a signer (private) key was given where a verifier key belongs")
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError(f"{what}: expected <name>+<key ID>+<base64 key>")
        name, hash16, key64 = parts
        if not is_valid_key_name(name):
            raise KeyFormatError(f"{what}: key name must be non-empty, without spaces or '+'")
        ident, public = _decode_key(what, hash16, key64)
        if ident != key_id(name, public):
            raise KeyFormatError(f"{what}: key ID does not match the public key")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(public)
        except ValueError as exc:
            raise KeyFormatError(f"{what}: not an Ed25519 public key ({exc})") from None
        return cls(name, ident, public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifierKey):
            return NotImplemented
        return (self.name, self.key_id, self.public_bytes) == (
            other.name,
            other.key_id,
            other.public_bytes,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.key_id, self.public_bytes))


@dataclass(frozen=True, eq=False)
class SignerKey:
    """A private Ed25519 note key: name, key ID and private key, consistent by construction.

    Its repr never shows the private key.
    """

    name: str
    key_id: bytes
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise TypeError("private_key must be an Ed25519PrivateKey")
        expected = key_id(self.name, _public_bytes(self.private_key.public_key()))
        if self.key_id != expected:
            raise KeyFormatError(
                f"signer key {self.name!r}: key ID {bytes(self.key_id).hex()} "
                "does not match the private key"
            )

    @classmethod
    def from_private_key(cls, name: str, private_key: Ed25519PrivateKey) -> SignerKey:
        """The signer key ``name`` for an Ed25519 private key."""
        return cls(name, key_id(name, _public_bytes(private_key.public_key())), private_key)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> SignerKey:
        """The signer key ``name`` derived from a 32-byte Ed25519 seed (RFC 8032)."""
        if len(seed) != 32:
            raise KeyFormatError(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
        return cls.from_private_key(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def label(self) -> str:
        """``<name>+<key ID hex>``: how notes and error messages identify the key."""
        return f"{self.name}+{self.key_id.hex()}"

    def verifier(self) -> VerifierKey:
        """The public half, to hand to verifiers."""
        return VerifierKey(self.name, self.key_id, self.private_key.public_key())

    def encode(self) -> str:
        """``PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 ‖ seed)>``. Keep it secret."""
        blob = base64.b64encode(bytes([ED25519]) + _seed(self.private_key)).decode("ascii")
        return f"{_PRIVATE_PREFIX}{self.label}+{blob}"

    @classmethod
    def parse(cls, text: str) -> SignerKey:
        """Decode ``PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 ‖ seed)>``.

        KeyFormatError names the fault; the message never contains key material.
        """
        if not isinstance(text, str):
            raise KeyFormatError(f"signer key must be text, not {type(text).__name__}")
        what = f"signer key {_shown(text, 4)}"
        if not text.startswith(_PRIVATE_PREFIX):
            raise KeyFormatError(
                f"signer key must start with {_PRIVATE_PREFIX!r} "
                "(was a verifier key given where the private key belongs?)"
            )
        parts = text[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError(f"{what}: expected PRIVATE+KEY+<name>+<key ID>+<base64 key>")
        name, hash16, key64 = parts
        if not is_valid_key_name(name):
            raise KeyFormatError(f"{what}: key name must be non-empty, without spaces or '+'")
        ident, seed = _decode_key(what, hash16, key64)
        private_key = Ed25519PrivateKey.from_private_bytes(seed)
        if ident != key_id(name, _public_bytes(private_key.public_key())):
            raise KeyFormatError(f"{what}: key ID does not match the private key")
        return cls(name, ident, private_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self.private_key.sign(message)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SignerKey):
            return NotImplemented
        return (
            self.name == other.name
            and self.key_id == other.key_id
            and hmac.compare_digest(_seed(self.private_key), _seed(other.private_key))
        )

    def __hash__(self) -> int:
        return hash((self.name, self.key_id))


def generate(name: str) -> SignerKey:
    """A new random Ed25519 signer key named ``name``."""
    return SignerKey.from_private_key(name, Ed25519PrivateKey.generate())


def signer_from_file(path: str | os.PathLike[str]) -> SignerKey:
    """The signer key stored in the file ``path`` (surrounding whitespace ignored)."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except UnicodeDecodeError:
        raise KeyFormatError(f"signer key file {os.fspath(path)!r}: not UTF-8 text") from None
    try:
        return SignerKey.parse(text.strip())
    except KeyFormatError as exc:
        raise KeyFormatError(f"signer key file {os.fspath(path)!r}: {exc}") from None


def signer_from_env(var: str = SIGNING_KEY_ENV) -> SignerKey:
    """The signer key held in the environment variable ``var`` (surrounding whitespace ignored)."""
    value = os.environ.get(var, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {var} is not set or empty")
    try:
        return SignerKey.parse(value)
    except KeyFormatError as exc:
        raise KeyFormatError(f"environment variable {var}: {exc}") from None


def load_signer(
    source: str | os.PathLike[str] | None = None, *, var: str = SIGNING_KEY_ENV
) -> SignerKey:
    """The signer key from ``source``, or from the environment when ``source`` is None.

    ``source`` is either the key text itself (it starts with ``PRIVATE+KEY+``, e.g. the
    value of an environment variable) or the path of a key file.
    """
    if source is None:
        return signer_from_env(var)
    if isinstance(source, str) and source.strip().startswith(_PRIVATE_PREFIX):
        return SignerKey.parse(source.strip())
    return signer_from_file(source)


def write_signer(path: str | os.PathLike[str], key: SignerKey) -> None:
    """Write ``key`` to the new file ``path``, mode 0600.

    Refuses (FileExistsError) to overwrite an existing file or follow a symlink, so a
    private key never lands in a file others could already read.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST, "refusing to overwrite an existing key file", os.fspath(path)
        ) from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # exact mode, whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            fd = -1
            file.write(key.encode() + "\n")
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        if fd >= 0:
            os.close(fd)
        os.unlink(path)
        raise


def verifiers_from(texts: str | Iterable[str]) -> tuple[VerifierKey, ...]:
    """The verifier keys encoded in ``texts``: several keys, e.g. old and new in a rotation.

    ``texts`` is an iterable of encoded keys, or one string of keys separated by
    whitespace (keys contain none). Repeats are dropped; two different keys with the
    same name and key ID, or no key at all, raise KeyFormatError.
    """
    items = texts.split() if isinstance(texts, str) else [t.strip() for t in texts]
    keys: dict[tuple[str, bytes], VerifierKey] = {}
    for text in items:
        if not text:
            continue
        key = VerifierKey.parse(text)
        seen = keys.setdefault((key.name, key.key_id), key)
        if seen != key:
            raise KeyFormatError(f"two different verifier keys are both {key.label}")
    if not keys:
        raise KeyFormatError("no verifier key given")
    return tuple(keys.values())
