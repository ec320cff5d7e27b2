"""Publishing the same draft from several threads at once: exactly one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from domain.members import NoDraftToPublish, VersionStatus
from tests.integration.conftest import DEFINITION

THREADS = 6


class TestConcurrentPublish:
    def test_exactly_one_publish_succeeds_and_the_others_find_no_draft(
        self, database, use_cases, actor
    ):
        members = use_cases.members
        crew = members.create_crew(actor, "Racing crew")
        member = members.create_member(actor, crew_id=crew.id, name="Racer", definition=DEFINITION)
        start = threading.Barrier(THREADS)

        def publish() -> object:
            start.wait(timeout=10)
            try:
                return members.publish_member(actor, member.id)
            except NoDraftToPublish as exc:
                return exc

        with ThreadPoolExecutor(THREADS) as pool:
            outcomes = [
                f.result(timeout=60) for f in [pool.submit(publish) for _ in range(THREADS)]
            ]

        published = [o for o in outcomes if not isinstance(o, NoDraftToPublish)]
        refused = [o for o in outcomes if isinstance(o, NoDraftToPublish)]
        assert len(published) == 1
        assert len(refused) == THREADS - 1
        version = published[0]
        assert version.status is VersionStatus.PUBLISHED  # type: ignore[union-attr]

        after = members.get_member(actor, member.id)
        assert after.active_version_number == 1
        assert after.draft_version_number is None
        assert after.latest_version_number == 1
        with database() as tx:
            entries = tx.audit.entries(actor.workspace_id, member.id)
        assert [e.action for e in entries].count("member.published") == 1

    def test_concurrent_forks_of_a_published_member_create_one_draft(self, use_cases, actor):
        members = use_cases.members
        crew = members.create_crew(actor, "Forking crew")
        member = members.create_member(actor, crew_id=crew.id, name="Forked", definition=DEFINITION)
        members.publish_member(actor, member.id)
        start = threading.Barrier(THREADS)

        def fork() -> int:
            start.wait(timeout=10)
            return members.replace_member_draft(actor, member.id, DEFINITION).number

        with ThreadPoolExecutor(THREADS) as pool:
            numbers = [f.result(timeout=60) for f in [pool.submit(fork) for _ in range(THREADS)]]

        assert set(numbers) == {2}
        after = members.get_member(actor, member.id)
        assert after.latest_version_number == 2
        assert after.draft_version_number == 2
