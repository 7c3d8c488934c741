"""C2SP signed notes (privplate/audit/note.py): signing, opening, and every malformed form Go's
note.Open refuses (tests/test_audit_go.py runs Go itself on privplate's checkpoints).

The key-hash vector is the one Go's note package documents (note.go, the PeterNeumann example).
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from privplate.audit.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_SIGNATURES,
    NoteError,
    NoteSigner,
    NoteVerifier,
    SignatureLine,
    key_hash,
    open_note,
    sign_note,
    split_note,
)

ALICE = NoteSigner("example.com/alice", bytes(range(32)))
BOB = NoteSigner("example.com/bob", bytes(range(1, 33)))
TEXT = "example.com/log\n7\nqkS3oG1zJnpQzS6AJ4QQ1iKx9d+GgyQu3thR62Xt+uk=\n"

# From golang.org/x/mod/sumdb/note's package documentation.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqf"
    "qdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]


def _line(name: str, hash_: int, payload: bytes) -> str:
    return f"— {name} {base64.b64encode(hash_.to_bytes(4, 'big') + payload).decode()}\n"


def test_goes_own_example_opens() -> None:
    verifier = NoteVerifier.parse(GO_VKEY)
    assert verifier.name == "PeterNeumann" and verifier.key_hash == 0xC74F20A3
    opened = open_note(GO_NOTE, [verifier])
    assert opened.text.startswith("If you think cryptography")
    assert [s.name for s in opened.verified] == ["PeterNeumann"] and opened.unverified == ()
    # Signing the same text with the documented private key gives the same bytes.
    signer = NoteSigner("PeterNeumann", GO_SEED)
    assert signer.verifier.vkey() == GO_VKEY
    assert sign_note(opened.text, signer) == GO_NOTE


def test_sign_then_open_and_the_signature_line_form() -> None:
    note = sign_note(TEXT, ALICE)
    assert note.startswith(TEXT + "\n— example.com/alice ") and note.endswith("\n")
    line = note[len(TEXT) + 1 :]
    blob = base64.b64decode(line.split(" ")[2])
    assert int.from_bytes(blob[:4], "big") == ALICE.verifier.key_hash and len(blob) == 68
    opened = open_note(note, [ALICE.verifier])
    assert opened.text == TEXT and opened.verified[0].payload == blob[4:]


def test_key_hash_is_the_spec_formula() -> None:
    pub = ALICE.verifier.public_key
    digest = hashlib.sha256(b"example.com/alice\n\x01" + pub).digest()
    assert key_hash("example.com/alice", ALG_ED25519, pub) == int.from_bytes(digest[:4], "big")
    # The algorithm byte is hashed: the same key as a cosigner has another hash.
    assert key_hash("example.com/alice", ALG_COSIGNATURE_V1, pub) != ALICE.verifier.key_hash


def test_vkey_round_trip_and_refusals() -> None:
    vkey = ALICE.verifier.vkey()
    name, hash_hex, body = vkey.split("+", 2)  # base64 may hold "+" too
    assert name == "example.com/alice" and int(hash_hex, 16) == ALICE.verifier.key_hash
    assert base64.b64decode(body) == b"\x01" + ALICE.verifier.public_key
    back = NoteVerifier.parse(vkey)
    assert (back.name, back.public_key, back.key_hash) == (
        "example.com/alice",
        ALICE.verifier.public_key,
        ALICE.verifier.key_hash,
    )
    wrong_hash = f"{name}+{(int(hash_hex, 16) ^ 1):08x}+{body}"
    with pytest.raises(NoteError, match="hash does not match"):
        NoteVerifier.parse(wrong_hash)
    renamed = f"example.com/mallory+{hash_hex}+{body}"  # the hash binds the name too
    with pytest.raises(NoteError, match="hash does not match"):
        NoteVerifier.parse(renamed)
    other_alg = base64.b64encode(b"\x02" + ALICE.verifier.public_key).decode()
    for bad in (
        "",
        "example.com/alice",
        f"{name}+{hash_hex}",
        f"{name}+{hash_hex[:7]}+{body}",
        f"{name}+zzzzzzzz+{body}",
        f"{name}+{hash_hex}+not base64!",
        f"{name}+{hash_hex}+{body[:-4]}",
        f"{name}+{hash_hex}+{other_alg}",
    ):
        with pytest.raises(NoteError):
            NoteVerifier.parse(bad)
    for bad_name in ("", "has space", "a+b", "tab\there", "nbsp\u00a0here"):
        with pytest.raises(NoteError, match="not a valid note key name"):
            NoteVerifier(bad_name, ALICE.verifier.public_key)


def test_wrong_key_and_unknown_keys() -> None:
    note = sign_note(TEXT, ALICE)
    with pytest.raises(NoteError, match="no signature on the note is by a key given"):
        open_note(note, [BOB.verifier])
    # Same name, another key: the hash differs, so the line is someone else's, unverified.
    impostor = NoteSigner("example.com/alice", bytes(range(2, 34)))
    with pytest.raises(NoteError, match="no signature"):
        open_note(note, [impostor.verifier])
    # A line whose name and hash are the known key's but whose signature is not: refused.
    forged = TEXT + "\n" + _line("example.com/alice", ALICE.verifier.key_hash, b"\x00" * 64)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(forged, [ALICE.verifier])
    both = sign_note(TEXT, ALICE, BOB)
    opened = open_note(both, [BOB.verifier])
    assert [s.name for s in opened.verified] == ["example.com/bob"]
    assert [s.name for s in opened.unverified] == ["example.com/alice"]


def test_a_changed_text_fails() -> None:
    note = sign_note(TEXT, ALICE)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note.replace("\n7\n", "\n8\n", 1), [ALICE.verifier])


def test_duplicate_lines() -> None:
    note = sign_note(TEXT, ALICE, BOB)
    alice_line = note.split("\n")[-3] + "\n"
    bob_line = note.split("\n")[-2] + "\n"
    repeated = note + alice_line + bob_line + bob_line
    opened = open_note(repeated, [ALICE.verifier])
    assert len(opened.verified) == 1  # counted once, as Go does
    assert len(opened.unverified) == 1  # identical unknown lines are kept once
    # A second, bad line by a known key rejects the note (stricter than Go, which skips it).
    bad_repeat = note + _line("example.com/alice", ALICE.verifier.key_hash, b"\x01" * 64)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(bad_repeat, [ALICE.verifier])


def test_sign_note_keeps_other_lines_and_replaces_its_own() -> None:
    note = sign_note(TEXT, BOB)
    bob = split_note(note)[1][0]
    resigned = sign_note(TEXT, ALICE, BOB, keep=(bob,))
    assert resigned.count("— example.com/bob ") == 1  # not repeated (Go's note.Sign)
    kept = sign_note(TEXT, ALICE, keep=(bob,))
    assert kept.index("example.com/bob") < kept.index("example.com/alice")  # kept ones first
    assert open_note(kept, [ALICE.verifier, BOB.verifier]).verified[1].name == "example.com/alice"
    with pytest.raises(NoteError, match="at least one signature"):
        sign_note(TEXT)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("no blank line\n— a AAAAAAA=\n", "no blank line"),
        (TEXT, "no blank line"),
        (TEXT + "\n", "end with a newline"),
        (TEXT + "\n— example.com/alice AAAAAAA=", "end with a newline"),
        (TEXT + "\n- example.com/alice AAAAAAA=\n", "em dash"),
        (TEXT + "\n—example.com/alice AAAAAAA=\n", "em dash"),
        (TEXT + "\n— example.com/alice\n", "malformed"),
        (TEXT + "\n— example.com/alice \n", "malformed"),
        (TEXT + "\n— example.com/alice AAAA\n", "malformed"),  # 3 bytes: < 4 + 1
        (TEXT + "\n— example.com/alice !!!!\n", "not base64"),
        (TEXT + "\n— example.com/alice AAAAAAA= extra\n", "not base64"),
        (TEXT + "\n— a+b AAAAAAA=\n", "malformed"),
        (TEXT + "\n— example.com/alice AAAAAAA=\n\n", "end with a newline"),
    ],
)
def test_malformed_notes(message: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        open_note(message, [ALICE.verifier])


def test_crlf_is_refused() -> None:
    note = sign_note(TEXT, ALICE)
    with pytest.raises(NoteError, match="CRLF"):
        open_note(note.replace("\n", "\r\n"), [ALICE.verifier])
    with pytest.raises(NoteError, match="CRLF"):
        open_note(note[:-1] + "\r\n", [ALICE.verifier])


@pytest.mark.parametrize("char", ["\x00", "\t", "\x0b", "\x0c", "\x1b", "\x1f"])
def test_control_characters_are_refused(char: str) -> None:
    with pytest.raises(NoteError, match="control character"):
        sign_note(f"a{char}b\n", ALICE)
    # In the text, and in a signature line (a key name), as Go refuses the whole note.
    note = sign_note(TEXT, ALICE)
    with pytest.raises(NoteError, match="control character"):
        open_note(note.replace("example.com/log", f"example.com/l{char}og", 1), [ALICE.verifier])
    in_name = note + _line(f"odd{char}name", 1, b"\x00" * 64)
    with pytest.raises(NoteError, match="control character"):
        open_note(in_name, [ALICE.verifier])


def test_unicode_line_breaks_are_not_line_breaks() -> None:
    # U+2028 and U+0085 are line breaks to str.splitlines(), not to a note (nor to Go).
    note = sign_note(TEXT, ALICE)
    for sep in ("\u2028", "\u0085"):
        glued = note[:-1] + sep + _line("example.com/x", 1, b"\x00" * 64)
        with pytest.raises(NoteError, match="not base64"):
            open_note(glued, [ALICE.verifier])
    # They are allowed inside the text, which is UTF-8 like any other.
    odd = "line\u2028with\u0085breaks\n"
    assert open_note(sign_note(odd, ALICE), [ALICE.verifier]).text == odd
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(sign_note(TEXT, ALICE).replace("log", "l\udcffg"), [ALICE.verifier])


def test_text_must_end_with_a_newline() -> None:
    with pytest.raises(NoteError, match="end with a newline"):
        sign_note("no newline", ALICE)


def test_at_most_a_hundred_signatures() -> None:
    note = sign_note(TEXT, ALICE)
    others = "".join(_line(f"example.com/w{i}", i, b"\x00" * 64) for i in range(99))
    opened = open_note(note + others, [ALICE.verifier])  # 100 lines: accepted, as by Go
    assert len(opened.unverified) == 99
    with pytest.raises(NoteError, match=f"at most {MAX_SIGNATURES}"):
        open_note(note + others + _line("example.com/w99", 99, b"\x00" * 64), [ALICE.verifier])


def test_the_last_blank_line_separates_the_signatures() -> None:
    text = "first\n\nsecond\n"  # a text may hold blank lines
    opened = open_note(sign_note(text, ALICE), [ALICE.verifier])
    assert opened.text == text


def test_a_signature_line_renders_as_parsed() -> None:
    line = SignatureLine("example.com/alice", 0xDEADBEEF, b"\x07" * 64)
    text, lines = split_note(TEXT + "\n" + line.render())
    assert text == TEXT and lines == [line]
