"""Pure pieces of the login flow: PKCE, stored digests, member cursors."""

from __future__ import annotations

from domain.identity.use_cases import SUBJECT, digest, pkce_challenge
from domain.workspaces.model import subject_after as decode_cursor
from domain.workspaces.model import subject_cursor as encode_cursor


class TestPkce:
    def test_the_s256_challenge_matches_rfc_7636_appendix_b(self):
        verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


class TestDigests:
    def test_secrets_are_stored_as_sha256_hex(self):
        assert digest("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        assert digest("abc") != digest("abd")


class TestMemberCursors:
    def test_a_cursor_round_trips_any_subject(self):
        for subject in ("auth0|12345", "user@example.com", "a", "x" * 255):
            assert decode_cursor(encode_cursor(subject)) == subject

    def test_a_cursor_we_never_issued_starts_from_the_beginning(self):
        assert decode_cursor("!!!") is None
        assert decode_cursor(None) is None


class TestSubjects:
    def test_usable_subjects_start_with_a_letter_or_digit(self):
        assert SUBJECT.match("auth0|abc") and SUBJECT.match("248289761001")
        assert not SUBJECT.match("..") and not SUBJECT.match("has space")
