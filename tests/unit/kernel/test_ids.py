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


class TestRandomness:
    def test_random_parts_come_from_the_os_a_pool_at_a_time(self, monkeypatch):
        """One os.urandom call serves hundreds of ids (each call releases the GIL)."""
        import domain.kernel.ids as ids

        calls: list[int] = []
        real = ids.os.urandom

        def counted(size: int) -> bytes:
            calls.append(size)
            return real(size)

        monkeypatch.setattr(ids.os, "urandom", counted)
        monkeypatch.setattr(ids, "_pool", b"")
        for _ in range(400):
            time.sleep(0.00105)  # a new millisecond each: a full 79-bit draw every time
            new_id("run")
        assert 1 <= len(calls) <= 2 and set(calls) == {ids._POOL_SIZE}

    def test_a_draw_has_exactly_the_bits_asked_for(self):
        import domain.kernel.ids as ids

        with ids._lock:
            draws = [ids._randbits(79) for _ in range(2000)]
            small = [ids._randbits(16) for _ in range(2000)]
        assert max(draws) < 2**79 and max(draws) >= 2**78  # the top bit is set half the time
        assert max(small) < 2**16 and len(set(small)) > 1900

    def test_a_forked_child_draws_its_own_bytes(self):
        import os

        import domain.kernel.ids as ids

        new_id("run")  # the parent holds a pool
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its pool as it starts
            os.write(write, b"empty" if ids._pool == b"" else b"inherited")
            os._exit(0)
        os.waitpid(pid, 0)
        try:
            assert os.read(read, 16) == b"empty"
        finally:
            os.close(read)
            os.close(write)


def test_the_pair_encoding_is_the_base32_of_the_number():
    from domain.kernel.ids import _ALPHABET, _encode

    def one_at_a_time(value: int, length: int) -> str:
        chars = []
        for _ in range(length):
            value, rem = divmod(value, 32)
            chars.append(_ALPHABET[rem])
        return "".join(reversed(chars))

    for value in (0, 1, 31, 32, 1023, 1024, 2**50 - 1, 2**80 - 1, 0x1234_5678_9ABC_DEF0_1234):
        for length in (10, 16):
            assert _encode(value, length) == one_at_a_time(value, length)
