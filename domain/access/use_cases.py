"""Access: what a credential is worth at this request, and workspace API keys.

``member_role`` is read on every request made with a session token (through a short cache in
the handler layer, ``AUTH_CACHE_SECONDS``): removal and demotion take effect on the next
request instead of at the token's expiry (ADR 0032). API keys (ADR 0033) are workspace
credentials for automation: ``sck_`` and 256 random bits, shown once, stored as SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from domain.access.errors import ApiKeyRejected
from domain.access.model import ApiKey, IssuedApiKey, KeyGrant
from domain.access.repository import AccessTx
from domain.kernel.actor import Actor, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import NotFound, RuleViolation
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.unit_of_work import Store

KEY_PREFIX = "sck_"
LAST_USED_PRECISION = timedelta(seconds=60)  # last_used_at is written at most once a minute


def key_digest(secret: str) -> str:
    """The stored form of a key secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Access:
    """Checking credentials against the current state, and managing API keys."""

    def __init__(self, store: Store[AccessTx], clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def member_role(self, workspace_id: str, subject: str) -> Role | None:
        """The subject's role in the workspace now; None if it is not (any more) a member."""
        with self._store() as tx:
            return tx.access.member_role(workspace_id, subject)

    def login_revoked(self, login_id: str) -> bool:
        """Whether a login's refresh family was revoked (reuse, removal): its session tokens
        are refused too."""
        with self._store() as tx:
            return tx.access.login_revoked(login_id)

    def api_key_role(self, workspace_id: str, key_id: str) -> Role | None:
        """The role of a key now; None if it is revoked, expired or unknown."""
        with self._store() as tx:
            key = tx.access.get_key(workspace_id, key_id)
        if key is None or (key.expires_at is not None and key.expires_at <= self._clock.now()):
            return None
        return key.role

    def authenticate_api_key(self, secret: str) -> KeyGrant:
        """The workspace and role a key secret acts with now; notes when it was used.

        :raises ApiKeyRejected: unknown, revoked or expired (one answer for each).
        """
        now = self._clock.now()
        digest = key_digest(secret)
        with self._store() as tx:
            row = tx.access.usable_key(digest, now)
        if row is None:
            raise ApiKeyRejected()
        before = now - LAST_USED_PRECISION
        if row.last_used_at is None or row.last_used_at.replace(tzinfo=now.tzinfo) < before:
            with self._store(write=True) as tx:
                tx.access.touch_key(row.id, now, before)
                tx.commit()
        return KeyGrant(row.id, row.workspace_id, Role.parse(row.role))

    def create_api_key(
        self, actor: Actor, name: str, role: Role, expires_at: datetime | None = None
    ) -> IssuedApiKey:
        """Create a key of the actor's workspace with at most the actor's role (admin only).

        :raises PermissionDenied: the actor is not an admin, or ``role`` is above its own.
        :raises RuleViolation: ``expires_at`` is not in the future.
        """
        actor.require(Role.ADMIN)
        actor.require(role)
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise RuleViolation(
                "expiry-in-the-past", "body /expires_at: must lie in the future.", "/expires_at"
            )
        secret = KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits
        key = ApiKey(
            new_id("key"), actor.workspace_id, name, role, actor.subject, now, expires_at, None
        )
        with self._store(write=True) as tx:
            tx.access.add_key(key, key_digest(secret))
            tx.audit.append(
                actor,
                "api_key.created",
                "api_key",
                key.id,
                {"name": name, "role": role.label, "expires_at": _iso(expires_at)},
                now,
            )
            tx.commit()
        return IssuedApiKey(key, secret)

    def list_api_keys(self, actor: Actor, page: PageRequest) -> Page[ApiKey]:
        """The workspace's keys (not revoked), oldest first (admin only).

        :raises PermissionDenied: the actor is not an admin.
        """
        actor.require(Role.ADMIN)
        with self._store() as tx:
            rows = tx.access.list_keys(actor.workspace_id, page.cursor, page.limit)
        return page_of(rows, page, lambda key: key.id)

    def revoke_api_key(self, actor: Actor, key_id: str) -> None:
        """Revoke a key: it authenticates nothing from the next request on (admin only).

        :raises PermissionDenied: the actor is not an admin.
        :raises NotFound: no such (unrevoked) key in the workspace.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            key = tx.access.get_key(actor.workspace_id, key_id)
            if key is None or not tx.access.revoke_key(actor.workspace_id, key_id, now):
                raise NotFound("api key", key_id)
            tx.audit.append(actor, "api_key.revoked", "api_key", key_id, {"name": key.name}, now)
            tx.commit()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
