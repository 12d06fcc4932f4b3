"""Signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    SignatureError,
    open_note,
    sign_checkpoint,
    sign_note,
    split_note,
    verify_checkpoint,
)
from ledger.errors import ConfigurationError, LedgerError
from ledger.keys import (
    SIGNING_KEY_ENV,
    KeyFormatError,
    SignerKey,
    VerifierKey,
    generate,
    key_id,
    load_signer,
    signer_from_env,
    signer_from_file,
    verifiers_from,
    write_signer,
)

ORIGIN = "regledger.test/ledger"
ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
CHECKPOINT = Checkpoint(ORIGIN, 8, ROOT)

# Known answers for the key derived from seed bytes(range(32)), name "regledger.test".
# Ed25519 is deterministic: any change of format, key ID or signed bytes shows here.
KAT_SEED = bytes(range(32))
KAT_NAME = "regledger.test"
KAT_KEY_ID = "b891ab6a"
KAT_VKEY = "regledger.test+b891ab6a+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
KAT_SKEY = "PRIVATE+KEY+regledger.test+b891ab6a+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
KAT_NOTE = (
    "regledger.test/ledger\n"
    "8\n"
    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    "\n"
    "\u2014 regledger.test uJGraj24FNLIqpJWOtflSV4Amf0Vry63kteXVckvnbmrXnWK2+H36KSxK6mOAKCHF6TS"
    "oQ2y/6Ye658/6sdVVkusBwI=\n"
)

# The example of the Go implementation (golang.org/x/mod/sumdb/note package doc):
# an independent implementation's key encodings and signed note.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
    "ngotpRZb6KE6RyyBwJnAM=\n"
)

# Module-level keys, so hypothesis tests need no function-scoped fixture.
LOG_KEY = SignerKey.from_seed(ORIGIN, bytes([7]) * 32)
OLD_KEY = SignerKey.from_seed(ORIGIN, bytes([1]) * 32)
NEW_KEY = SignerKey.from_seed(ORIGIN, bytes([2]) * 32)


def flip(text: str, index: int) -> str:
    """``text`` with one ASCII character at ``index`` changed to another base64 letter."""
    ch = text[index]
    return text[:index] + ("B" if ch != "B" else "C") + text[index + 1 :]


# --- keys ------------------------------------------------------------------------


def test_generated_keys_round_trip_through_their_encodings() -> None:
    signer = generate("regledger.example/ledger/prod")
    assert SignerKey.parse(signer.encode()) == signer
    verifier = signer.verifier()
    assert VerifierKey.parse(verifier.encode()) == verifier
    assert verifier.encode().startswith(f"regledger.example/ledger/prod+{signer.key_id.hex()}+")
    assert signer.encode().startswith("PRIVATE+KEY+regledger.example/ledger/prod+")
    assert generate("regledger.example/ledger/prod") != signer


def test_key_id_is_the_first_four_bytes_of_sha256_of_name_newline_type_and_key() -> None:
    signer = generate("example.com/log42")
    public = signer.verifier().public_bytes
    independent = hashlib.sha256(b"example.com/log42" + b"\x0a" + b"\x01" + public).digest()[:4]
    assert key_id("example.com/log42", public) == independent == signer.key_id
    encoded = signer.verifier().encode().split("+", 2)
    assert encoded[1] == independent.hex()
    assert base64.b64decode(encoded[2]) == b"\x01" + public


def test_known_answer_keys_and_signed_checkpoint() -> None:
    signer = SignerKey.from_seed(KAT_NAME, KAT_SEED)
    assert signer.key_id.hex() == KAT_KEY_ID
    assert signer.verifier().encode() == KAT_VKEY
    assert signer.encode() == KAT_SKEY
    assert sign_checkpoint(CHECKPOINT, [signer]) == KAT_NOTE
    verifier = VerifierKey.parse(KAT_VKEY)
    assert verify_checkpoint(KAT_NOTE, [verifier], origin=ORIGIN) == CHECKPOINT


def test_interoperates_with_the_go_note_package_example() -> None:
    signer = SignerKey.parse(GO_SKEY)
    assert signer.verifier().encode() == GO_VKEY
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE
    assert open_note(GO_NOTE, [VerifierKey.parse(GO_VKEY)]) == (GO_TEXT, ["PeterNeumann"])


def test_parses_the_checkpoint_example_of_the_spec() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = Checkpoint.parse(text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.text() == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (KAT_VKEY.replace("+b891ab6a+", "+b891ab6b+"), "key ID does not match the public key"),
        (KAT_VKEY.replace("+b891ab6a+", "+b891ab6+"), "key ID must be 8 hex digits"),
        (KAT_VKEY.replace("+b891ab6a+", "+0xb891ab+"), "key ID must be 8 hex digits"),
        ("regledger.test+b891ab6a", "expected <name>+<key ID>+<base64 key>"),
        ("+b891ab6a+" + KAT_VKEY.split("+", 2)[2], "key name must be non-empty"),
        ("a b+b891ab6a+" + KAT_VKEY.split("+", 2)[2], "key name must be non-empty"),
        ("regledger.test+b891ab6a+AQ!!", "not valid base64"),
        ("regledger.test+b891ab6a+", "key is empty"),
        ("regledger.test+b891ab6a+" + base64.b64encode(b"\x02" + bytes(32)).decode(), "0x02"),
        ("regledger.test+b891ab6a+" + base64.b64encode(b"\x01" + bytes(31)).decode(), "31"),
        (KAT_SKEY, "signer (private) key was given"),
    ],
)
def test_malformed_verifier_keys_are_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(KeyFormatError, match="verifier key|signer") as caught:
        VerifierKey.parse(text)
    assert problem in str(caught.value)
    assert isinstance(caught.value, LedgerError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (KAT_SKEY.replace("+b891ab6a+", "+00000000+"), "key ID does not match the private key"),
        (KAT_VKEY, "must start with 'PRIVATE+KEY+'"),
        ("PRIVATE+KEY+regledger.test+b891ab6a", "expected PRIVATE+KEY+<name>"),
        (KAT_SKEY[:-1], "not valid base64"),
        (KAT_SKEY[:-4], "Ed25519 key must be 32 bytes, got 29"),
    ],
)
def test_malformed_signer_keys_are_refused_without_echoing_the_key(text: str, problem: str) -> None:
    with pytest.raises(KeyFormatError) as caught:
        SignerKey.parse(text)
    assert problem in str(caught.value)
    assert KAT_SKEY.rsplit("+", 1)[1][:8] not in str(caught.value)


def test_signer_repr_does_not_show_the_private_key() -> None:
    signer = SignerKey.from_seed(KAT_NAME, KAT_SEED)
    assert KAT_SKEY.rsplit("+", 1)[1] not in repr(signer)
    assert "private" not in repr(signer).lower()


def test_write_signer_creates_a_0600_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    signer = generate(ORIGIN)
    previous = os.umask(0)  # even with a permissive umask
    try:
        write_signer(path, signer)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signer_from_file(path) == signer
    assert load_signer(path) == signer
    assert load_signer(str(path)) == signer

    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_signer(path, generate(ORIGIN))
    assert signer_from_file(path) == signer


def test_write_signer_does_not_follow_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "log.key").symlink_to(target)
    with pytest.raises(FileExistsError):
        write_signer(tmp_path / "log.key", generate(ORIGIN))
    assert not target.exists()


def test_malformed_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text(KAT_VKEY + "\n")
    with pytest.raises(KeyFormatError, match="bad.key"):
        signer_from_file(path)


def test_signer_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, KAT_SKEY + "\n")
    assert signer_from_env().encode() == KAT_SKEY
    assert load_signer().encode() == KAT_SKEY
    assert load_signer(os.environ[SIGNING_KEY_ENV]).encode() == KAT_SKEY
    monkeypatch.setenv("OTHER_KEY", GO_SKEY)
    assert signer_from_env("OTHER_KEY").name == "PeterNeumann"

    monkeypatch.setenv("OTHER_KEY", KAT_VKEY)
    with pytest.raises(KeyFormatError, match="OTHER_KEY"):
        signer_from_env("OTHER_KEY")
    monkeypatch.delenv(SIGNING_KEY_ENV)
    with pytest.raises(ConfigurationError, match=SIGNING_KEY_ENV):
        signer_from_env()


def test_verifiers_from_several_keys() -> None:
    old, new = OLD_KEY.verifier(), NEW_KEY.verifier()
    assert verifiers_from([old.encode(), new.encode(), old.encode()]) == (old, new)
    assert verifiers_from(f" {old.encode()}\n{new.encode()}\n") == (old, new)
    with pytest.raises(KeyFormatError, match="no verifier key"):
        verifiers_from("")


# --- signed notes ------------------------------------------------------------------


def test_sign_and_open_a_note_with_several_signers() -> None:
    witness = generate("witness.example/w1")
    note = sign_note("hello\n", [LOG_KEY, witness])
    text, signatures = split_note(note)
    assert text == "hello\n"
    assert [s.name for s in signatures] == [ORIGIN, "witness.example/w1"]
    assert note.startswith("hello\n\n\u2014 " + ORIGIN + " ")
    verifiers = [LOG_KEY.verifier(), witness.verifier()]
    assert open_note(note, verifiers) == ("hello\n", [ORIGIN, "witness.example/w1"])
    assert open_note(note.encode("utf-8"), [witness.verifier()]) == (
        "hello\n",
        ["witness.example/w1"],
    )


def test_the_text_may_contain_blank_lines_and_ends_at_the_last_one() -> None:
    text = (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed \u00e8 subito sera.\n"
    )
    note = sign_note(text, [LOG_KEY])
    assert open_note(note, [LOG_KEY.verifier()]) == (text, [ORIGIN])


def test_a_flipped_byte_in_the_text_is_rejected_naming_the_key() -> None:
    note = sign_checkpoint(CHECKPOINT, [LOG_KEY])
    tampered = note.replace("\n8\n", "\n9\n", 1)
    with pytest.raises(
        SignatureError, match=re.escape(f"known key {LOG_KEY.label} does not verify")
    ):
        verify_checkpoint(tampered, [LOG_KEY.verifier()])


def test_a_flipped_byte_in_the_signature_is_rejected() -> None:
    note = sign_checkpoint(CHECKPOINT, [LOG_KEY])
    # Past the 4-byte key ID (6 base64 characters) and inside the signature.
    tampered = flip(note, len(note) - 20)
    with pytest.raises(SignatureError, match=re.escape(f"{LOG_KEY.label} does not verify")):
        verify_checkpoint(tampered, [LOG_KEY.verifier()])


def test_a_note_signed_only_by_an_unknown_key_is_rejected() -> None:
    stranger = generate("stranger.example/log")
    note = sign_checkpoint(CHECKPOINT, [stranger])
    with pytest.raises(SignatureError, match="no known key signed") as caught:
        verify_checkpoint(note, [LOG_KEY.verifier()])
    assert caught.value.unknown == (stranger.label,)
    assert stranger.label in str(caught.value)


def test_a_known_name_with_another_key_id_is_an_unknown_key() -> None:
    impostor = generate(ORIGIN)  # same name, different key, so a different key ID
    assert impostor.key_id != LOG_KEY.key_id
    with pytest.raises(SignatureError, match="no known key signed"):
        verify_checkpoint(sign_checkpoint(CHECKPOINT, [impostor]), [LOG_KEY.verifier()])
    # Beside a good signature, the impostor's is ignored.
    note = sign_checkpoint(CHECKPOINT, [impostor, LOG_KEY])
    assert verify_checkpoint(note, [LOG_KEY.verifier()]) == CHECKPOINT


def test_a_known_key_id_under_another_name_is_an_unknown_key() -> None:
    note = sign_checkpoint(CHECKPOINT, [LOG_KEY])
    renamed = note.replace(f"\u2014 {ORIGIN} ", "\u2014 other.example/log ")
    with pytest.raises(SignatureError, match="no known key signed"):
        verify_checkpoint(renamed, [LOG_KEY.verifier()])


def test_a_bad_signature_by_a_known_key_rejects_the_note_despite_a_good_one() -> None:
    witness = generate("witness.example/w1")
    note = sign_checkpoint(CHECKPOINT, [LOG_KEY, witness])
    lines = note.split("\n")
    lines[-2] = flip(lines[-2], len(lines[-2]) - 10)  # the witness's signature
    with pytest.raises(SignatureError, match=re.escape(f"{witness.label} does not verify")):
        verify_checkpoint("\n".join(lines), [LOG_KEY.verifier(), witness.verifier()])
    # Not configured, the witness's bad signature is ignored like any unknown one.
    assert verify_checkpoint("\n".join(lines), [LOG_KEY.verifier()]) == CHECKPOINT


def test_key_rotation_accepts_either_configured_key() -> None:
    both = verifiers_from([OLD_KEY.verifier().encode(), NEW_KEY.verifier().encode()])
    by_old = sign_checkpoint(CHECKPOINT, [OLD_KEY])
    by_new = sign_checkpoint(CHECKPOINT, [NEW_KEY])
    by_both = sign_checkpoint(CHECKPOINT, [OLD_KEY, NEW_KEY])
    for note in (by_old, by_new, by_both):
        assert verify_checkpoint(note, both, origin=ORIGIN) == CHECKPOINT
    assert open_note(by_both, both) == (CHECKPOINT.text(), [ORIGIN])
    # After the old key is retired, only notes the new key signed verify.
    assert verify_checkpoint(by_both, [NEW_KEY.verifier()]) == CHECKPOINT
    with pytest.raises(SignatureError, match="no known key signed"):
        verify_checkpoint(by_old, [NEW_KEY.verifier()])


def test_repeated_signature_lines_count_once() -> None:
    note = sign_note("x\n", [LOG_KEY])
    line = note.split("\n\n", 1)[1]
    assert open_note(note + line, [LOG_KEY.verifier()]) == ("x\n", [ORIGIN])


def test_no_verifier_configured_is_rejected() -> None:
    with pytest.raises(SignatureError, match="no known key signed"):
        open_note(sign_note("x\n", [LOG_KEY]), [])


@pytest.mark.parametrize(
    ("note", "problem"),
    [
        ("x\n\u2014 a AAAAAAA=\n", "no blank line separates"),
        ("x\n\n", "no signature line"),
        ("x\n\n\u2014 a AAAAAAA=", "does not end in newline"),
        ("x\n\n- a AAAAAAA=\n", "signature line 1 does not start with an em dash"),
        ("x\n\n\u2014 aAAAAAAA=\n", "signature line 1 is not"),
        ("x\n\n\u2014 a+b AAAAAAA=\n", "not a valid key name"),
        ("x\n\n\u2014 a AAAA AAA=\n", "not valid base64"),
        ("x\n\n\u2014 a AAAAAAA\n", "not valid base64"),
        ("x\n\n\u2014 a @@@@@@@=\n", "not valid base64"),
        ("x\n\n\u2014 a AAAAAA==\n", "shorter than 5 bytes"),
        ("x\r\n\n\u2014 a AAAAAAA=\n", "control character U+000D"),
        ("x\tx\n\n\u2014 a AAAAAAA=\n", "control character U+0009"),
        (b"x\xff\n\n\xe2\x80\x94 a AAAAAAA=\n", "not valid UTF-8"),
        ("x\n\n" + "\u2014 a AAAAAAA=\n" * (MAX_SIGNATURES + 1), "more than 100"),
    ],
)
def test_malformed_notes_are_rejected(note: str | bytes, problem: str) -> None:
    with pytest.raises(SignatureError, match="malformed note") as caught:
        open_note(note, [LOG_KEY.verifier()])
    assert problem in str(caught.value)


def test_at_least_sixteen_signatures_are_accepted() -> None:
    note = sign_note("x\n", [LOG_KEY])
    strangers = "".join(
        line
        for key in [generate(f"w{i}.example") for i in range(20)]
        for line in [sign_note("x\n", [key]).split("\n\n", 1)[1]]
    )
    assert open_note(note + strangers, [LOG_KEY.verifier()]) == ("x\n", [ORIGIN])


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "end with a newline"), ("x", "end with a newline"), ("x\r\n", r"U\+000D")],
)
def test_sign_note_refuses_text_that_is_not_a_note_text(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        sign_note(text, [LOG_KEY])


def test_sign_note_needs_a_signer() -> None:
    with pytest.raises(ValueError, match="at least one signer"):
        sign_note("x\n", [])


# --- checkpoints -------------------------------------------------------------------


def test_checkpoint_text_and_parse() -> None:
    root64 = base64.b64encode(ROOT).decode()
    assert CHECKPOINT.text() == f"{ORIGIN}\n8\n{root64}\n"
    assert Checkpoint.parse(CHECKPOINT.text()) == CHECKPOINT
    with_extensions = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "\u2014 two"))
    assert with_extensions.text() == f"{ORIGIN}\n0\n{root64}\next one\n\u2014 two\n"
    assert Checkpoint.parse(with_extensions.text()) == with_extensions
    note = sign_checkpoint(with_extensions, [LOG_KEY])
    assert verify_checkpoint(note, [LOG_KEY.verifier()]) == with_extensions


ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        (f"{ORIGIN}\n8\n{ROOT64}", "does not end with a newline"),
        (f"{ORIGIN}\r\n8\r\n{ROOT64}\r\n", "line 1 (origin) contains control character U+000D"),
        (f"{ORIGIN}\n8\r\n{ROOT64}\n", "line 2 (tree size) contains control character U+000D"),
        (f"{ORIGIN}\n08\n{ROOT64}\n", "line 2 (tree size): '08' has a leading zero"),
        (f"{ORIGIN}\n00\n{ROOT64}\n", "leading zero"),
        (f"{ORIGIN}\n+8\n{ROOT64}\n", "not a decimal number"),
        (f"{ORIGIN}\n 8\n{ROOT64}\n", "not a decimal number"),
        (f"{ORIGIN}\n8 \n{ROOT64}\n", "not a decimal number"),
        (f"{ORIGIN}\n\u0668\n{ROOT64}\n", "not a decimal number"),
        (f"{ORIGIN}\n-1\n{ROOT64}\n", "not a decimal number"),
        (f"{ORIGIN}\n{2**64}\n{ROOT64}\n", "2^64 or more"),
        (f"{ORIGIN}\n{'9' * 5000}\n{ROOT64}\n", "2^64 or more"),
        (f"{ORIGIN}\n8\n{base64.b64encode(ROOT[:31]).decode()}\n", "31 bytes"),
        (f"{ORIGIN}\n8\n{base64.b64encode(ROOT + b'x').decode()}\n", "33 bytes"),
        (f"{ORIGIN}\n8\n{ROOT.hex()}\n", "line 3 (root hash)"),
        (f"{ORIGIN}\n8\n{ROOT64.rstrip('=')}\n", "not valid base64"),
        (f"{ORIGIN}\n8\n{ROOT64[:-2]}R=\n", "not canonical base64"),
        (f"{ORIGIN}\n8\n", "needs origin, tree size and root hash"),
        (f"\n8\n{ROOT64}\n", "line 1 (origin) is empty"),
        (f"{ORIGIN}\n\n{ROOT64}\n", "line 2 (tree size) is empty"),
        (f"{ORIGIN}\n8\n{ROOT64}\n\n", "line 4 (extension line) is empty"),
        (f"{ORIGIN}\n8\n{ROOT64}\next\n\n", "line 5 (extension line) is empty"),
    ],
)
def test_malformed_checkpoints_are_rejected_naming_the_line(text: str, problem: str) -> None:
    with pytest.raises(CheckpointError) as caught:
        Checkpoint.parse(text)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions", "problem"),
    [
        ("", 8, ROOT, (), "line 1 (origin) is empty"),
        ("a\nb", 8, ROOT, (), "line 1 (origin) contains a newline"),
        ("a\rb", 8, ROOT, (), "U+000D"),
        (ORIGIN, -1, ROOT, (), "not in [0, 2^64)"),
        (ORIGIN, 2**64, ROOT, (), "not in [0, 2^64)"),
        (ORIGIN, True, ROOT, (), "must be an int"),
        (ORIGIN, 8, ROOT[:31], (), "must be 32 bytes, got 31"),
        (ORIGIN, 8, ROOT, ("",), "line 4 (extension line) is empty"),
        (ORIGIN, 8, ROOT, ("a", "b\nc"), "line 5 (extension line) contains a newline"),
    ],
)
def test_invalid_checkpoints_cannot_be_built(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(CheckpointError) as caught:
        Checkpoint(origin, size, root, extensions)
    assert problem in str(caught.value)


def test_a_signed_text_that_is_not_a_checkpoint_is_rejected() -> None:
    note = sign_note(f"{ORIGIN}\n08\n{ROOT64}\n", [LOG_KEY])
    with pytest.raises(CheckpointError, match="leading zero"):
        verify_checkpoint(note, [LOG_KEY.verifier()])


def test_an_origin_mismatch_is_rejected() -> None:
    other = Checkpoint("regledger.test/other", 8, ROOT)
    note = sign_checkpoint(other, [LOG_KEY])
    assert verify_checkpoint(note, [LOG_KEY.verifier()]) == other
    with pytest.raises(CheckpointError, match="origin 'regledger.test/other' is not the expected"):
        verify_checkpoint(note, [LOG_KEY.verifier()], origin=ORIGIN)


# --- properties --------------------------------------------------------------------

# Any non-empty line: every character but the ASCII controls (a note may contain none
# but newline, which ends the line) and lone surrogates (not UTF-8).
LINE = st.text(
    st.characters(codec="utf-8", exclude_characters=[chr(i) for i in range(32)]),
    min_size=1,
)
SIZES = st.integers(min_value=0, max_value=2**64 - 1)
ROOTS = st.binary(min_size=32, max_size=32)


@settings(max_examples=200, deadline=None)
@given(origin=LINE, size=SIZES, root=ROOTS, extensions=st.lists(LINE, max_size=3))
def test_checkpoints_round_trip_through_text_and_signatures(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    text = checkpoint.text()
    assert text.count("\n") == 3 + len(extensions)
    assert Checkpoint.parse(text) == checkpoint
    note = sign_checkpoint(checkpoint, [LOG_KEY])
    assert verify_checkpoint(note, [LOG_KEY.verifier()], origin=origin) == checkpoint
    assert verify_checkpoint(note.encode("utf-8"), [LOG_KEY.verifier()]) == checkpoint


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(st.one_of(st.just(""), LINE), min_size=1, max_size=6))
def test_any_note_text_round_trips(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    note = sign_note(text, [OLD_KEY, NEW_KEY])
    assert open_note(note, [NEW_KEY.verifier()]) == (text, [ORIGIN])
    assert split_note(note)[0] == text
