"""Resource ids: a kind prefix and 26 time-sortable base-32 characters."""

from __future__ import annotations

import re
import time

from domain.kernel.ids import _ALPHABET, new_id


def _millis(identifier: str) -> int:
    value = 0
    for char in identifier.split("_", 1)[1][:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value


class TestIdShape:
    def test_an_id_is_the_prefix_an_underscore_and_26_lower_case_base32_characters(self):
        for prefix in ("wsp", "crw", "mem", "ver", "aud"):
            assert re.fullmatch(rf"{prefix}_[0-9a-z]{{26}}", new_id(prefix))

    def test_ids_match_the_patterns_the_contract_declares(self):
        assert re.fullmatch(r"^crw_[0-9a-z]{26}$", new_id("crw"))
        assert re.fullmatch(r"^mem_[0-9a-z]{26}$", new_id("mem"))

    def test_ids_use_crockford_base32_without_ambiguous_letters(self):
        body = "".join(new_id("x")[2:] for _ in range(200))
        assert not set(body) & set("ilou")

    def test_ids_are_unique(self):
        ids = {new_id("mem") for _ in range(5000)}
        assert len(ids) == 5000


class TestIdOrder:
    def test_the_first_ten_characters_encode_the_creation_millisecond(self):
        before = time.time_ns() // 1_000_000
        identifier = new_id("crw")
        after = time.time_ns() // 1_000_000
        assert before <= _millis(identifier) <= after

    def test_an_id_made_in_a_later_millisecond_sorts_after_an_earlier_one(self):
        earlier = [new_id("crw")]
        for _ in range(5):
            time.sleep(0.002)
            earlier.append(new_id("crw"))
        assert earlier == sorted(earlier)


class TestOrderWithinAProcess:
    def test_ids_made_in_a_tight_loop_strictly_increase(self):
        ids = [new_id("ver") for _ in range(20_000)]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
