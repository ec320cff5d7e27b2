"""The webhook signature scheme and the encryption of secrets at rest."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from domain.kernel import SecretUnreadable
from domain.triggers.webhook_signature import new_secret, refusal, sign
from scaicrew.adapters.secret_box import FernetSecretBox

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(b"k", f"{TS}.".encode() + b'{"a":1}', hashlib.sha256).hexdigest()
    assert sign("k", TS, b'{"a":1}') == "sha256=" + expected


@pytest.mark.parametrize(
    ("skew", "reason"),
    [
        (0, None),
        (299, None),
        (-299, None),
        (300, None),
        (301, "stale-timestamp"),
        (-301, "stale-timestamp"),
    ],
)
def test_the_window_is_300_seconds_either_way(skew, reason):
    stamp = str(int(NOW.timestamp()) + skew)
    assert refusal("k", stamp, sign("k", stamp, b"{}"), b"{}", NOW) == reason


def test_a_wrong_key_body_or_timestamp_is_a_bad_signature():
    good = sign("k", TS, b"{}")
    assert refusal("other", TS, good, b"{}", NOW) == "bad-signature"
    assert refusal("k", TS, good, b"{ }", NOW) == "bad-signature"
    assert refusal("k", str(int(TS) + 1), good, b"{}", NOW) == "bad-signature"
    assert refusal("k", "12a", good, b"{}", NOW) == "bad-timestamp"


def test_secrets_are_random_and_long():
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_") and len(first) >= 48


def test_the_box_round_trips_and_rotates_keys():
    old = FernetSecretBox(["old-key-material-0123456789"])
    token = old.seal("whsec_abc")
    assert "whsec_abc" not in token
    rotated = FernetSecretBox(["new-key-material-0123456789", "old-key-material-0123456789"])
    assert rotated.open(token) == "whsec_abc"
    with pytest.raises(SecretUnreadable):
        FernetSecretBox(["new-key-material-0123456789"]).open(token)
    with pytest.raises(SecretUnreadable):
        rotated.open("garbage")


def test_any_one_of_several_signatures_may_match_a_rotating_sender():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    ts, body = str(int(now.timestamp())), b'{"id":"1"}'
    old, new = new_secret(), new_secret()
    both = f"{sign(new, ts, body)},{sign(old, ts, body)}"
    assert refusal(old, ts, both, body, now) is None
    assert refusal(new, ts, both, body, now) is None
    assert refusal(new_secret(), ts, both, body, now) == "bad-signature"
    # at most four are looked at
    many = ",".join([sign(new_secret(), ts, body)] * 4 + [sign(old, ts, body)])
    assert refusal(old, ts, many, body, now) == "bad-signature"


def test_the_box_remembers_what_a_token_opened_to_and_never_a_refusal():
    box = FernetSecretBox(["key-material-0123456789abcdef"])
    token = box.seal("whsec_remembered")
    assert box.open(token) == box.open(token) == "whsec_remembered"
    assert box._opened.cache_info().hits == 1  # the second open decrypted nothing
    other = FernetSecretBox(["other-material-0123456789abcdef"])
    for _ in range(2):  # a box with other keys refuses it, every time
        with pytest.raises(SecretUnreadable):
            other.open(token)
    assert other._opened.cache_info().currsize == 0
