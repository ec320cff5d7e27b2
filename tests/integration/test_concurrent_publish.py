"""Publishing the same draft from several threads at once: exactly one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from domain import services
from domain.errors import NoDraftToPublish
from domain.model import VersionStatus
from tests.integration.conftest import DEFINITION

THREADS = 6


class TestConcurrentPublish:
    def test_exactly_one_publish_succeeds_and_the_others_find_no_draft(self, database, actor):
        crew = services.create_crew(database, actor, "Racing crew")
        member = services.create_member(
            database, actor, crew_id=crew.id, name="Racer", definition=DEFINITION
        )
        start = threading.Barrier(THREADS)

        def publish() -> object:
            start.wait(timeout=10)
            try:
                return services.publish_member(database, actor, member.id)
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

        after = services.get_member(database, actor, member.id)
        assert after.active_version_number == 1
        assert after.draft_version_number is None
        assert after.latest_version_number == 1
        with database() as tx:
            entries = tx.repo.audit_entries(actor.workspace_id, member.id)
        assert [e["action"] for e in entries].count("member.published") == 1

    def test_concurrent_forks_of_a_published_member_create_one_draft(self, database, actor):
        crew = services.create_crew(database, actor, "Forking crew")
        member = services.create_member(
            database, actor, crew_id=crew.id, name="Forked", definition=DEFINITION
        )
        services.publish_member(database, actor, member.id)
        start = threading.Barrier(THREADS)

        def fork() -> int:
            start.wait(timeout=10)
            return services.replace_draft(database, actor, member.id, DEFINITION).number

        with ThreadPoolExecutor(THREADS) as pool:
            numbers = [f.result(timeout=60) for f in [pool.submit(fork) for _ in range(THREADS)]]

        assert set(numbers) == {2}
        after = services.get_member(database, actor, member.id)
        assert after.latest_version_number == 2
        assert after.draft_version_number == 2
