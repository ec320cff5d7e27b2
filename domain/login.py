"""Login use cases: OIDC authorization code + PKCE, one-shot session codes, refresh tokens.

The flow (ADR 0014):

1. ``start_login`` stores a fresh state, nonce and PKCE verifier (hashed state, with an
   expiry) and returns the provider's authorize URL.
2. ``complete_login`` takes the state (single use), redeems the provider's code, finds or
   creates the user, bootstraps the tenant's first user into a default workspace as admin, and
   returns a one-shot session code for the front end.
3. ``redeem_session_code`` turns the code into a session token and a refresh token (or, with
   several workspaces and none named, lists them; the code stays redeemable until it expires).
4. ``refresh_session`` rotates the refresh token, re-reads the role, optionally switches
   workspace. Presenting a rotated token again revokes its whole family.

Secrets handed to clients (state, session code, refresh token) are stored as SHA-256 digests.
The provider is called outside any database transaction: ``complete_login`` therefore commits
twice (the state is burnt before the network call, the user after it).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain import services
from domain.errors import (
    DomainError,
    LoginNotConfigured,
    LoginRejected,
    MembershipRequired,
    NotFound,
)
from domain.identity import RefreshToken
from domain.ids import new_id
from domain.model import Membership, Role, Workspace
from domain.ports import IdentityProvider, SessionTokens, VerifiedIdentity
from domain.unit_of_work import UnitOfWork, UnitOfWorkFactory

DEFAULT_TENANT = services.DEFAULT_TENANT
DEFAULT_WORKSPACE_NAME = "Default workspace"
SELECTION_LIMIT = 200  # workspaces listed for a selection (and considered at all)
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:|+-]{0,254}$")
TENANT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class LoginSettings:
    state_ttl_seconds: int = 600
    session_code_ttl_seconds: int = 60
    refresh_ttl_seconds: int = 30 * 24 * 3600


@dataclass(frozen=True)
class Login:
    """What the login use cases work with; built once by the composition root."""

    uow: UnitOfWorkFactory
    provider: IdentityProvider | None
    tokens: SessionTokens
    settings: LoginSettings = LoginSettings()


@dataclass(frozen=True)
class LoginStart:
    authorization_url: str
    state: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionGrant:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_at: datetime
    membership: Membership


@dataclass(frozen=True)
class WorkspaceSelection:
    workspaces: list[Membership]


def _now() -> datetime:
    return datetime.now(UTC)


def _secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The stored form of a secret handed to a client."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 section 4.2)."""
    hashed = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(hashed).decode("ascii").rstrip("=")


def _provider(login: Login) -> IdentityProvider:
    if login.provider is None:
        raise LoginNotConfigured()
    return login.provider


def start_login(login: Login) -> LoginStart:
    """Store a fresh state, nonce and PKCE verifier; return the provider's authorize URL.

    :raises LoginNotConfigured: no provider is configured.
    :raises IdentityProviderUnavailable: discovery failed.
    """
    provider = _provider(login)
    state, nonce, verifier = _secret(), _secret(), secrets.token_urlsafe(48)
    url = provider.authorization_url(
        state=state, nonce=nonce, code_challenge=pkce_challenge(verifier)
    )
    now = _now()
    expires_at = now + timedelta(seconds=login.settings.state_ttl_seconds)
    with login.uow(write=True) as tx:
        tx.identity.purge_expired(now)
        tx.identity.add_login_state(digest(state), nonce, verifier, now, expires_at)
        tx.commit()
    return LoginStart(url, state, expires_at)


def complete_login(
    login: Login, *, state: str, code: str | None = None, error: str | None = None
) -> str:
    """Finish a login at the callback; return a one-shot session code for the front end.

    :raises LoginNotConfigured: no provider is configured.
    :raises LoginRejected: unknown, used or expired state; the provider answered with an
        ``error`` instead of a code, refused the code, or its ID token did not validate; the
        subject or tenant is unusable.
    :raises IdentityProviderUnavailable: the provider is down or answered garbage.
    """
    provider = _provider(login)
    now = _now()
    with login.uow(write=True) as tx:
        taken = tx.identity.take_login_state(digest(state))
        tx.commit()  # burnt even if what follows fails: a state is good for one attempt only
    if taken is None:
        raise LoginRejected("invalid-state", "Unknown or already used login state.")
    if taken.expires_at <= now:
        raise LoginRejected("invalid-state", "The login state has expired; log in again.")
    if error is not None or code is None:
        raise LoginRejected(
            "login-denied",
            f"The identity provider did not authorize the login ({error or 'no code'}).",
        )
    identity = provider.exchange_code(
        code=code, code_verifier=taken.code_verifier, nonce=taken.nonce
    )
    tenant_id = _tenant_of(identity)
    session_code = _secret()
    now = _now()
    with login.uow(write=True) as tx:
        tx.identity.upsert_user(
            new_id("usr"), tenant_id, identity.subject, identity.email, identity.name, now
        )
        if tx.identity.claim_tenant_bootstrap(tenant_id, identity.subject, now):
            _bootstrap_workspace(tx, tenant_id, identity.subject, now)
        expires_at = now + timedelta(seconds=login.settings.session_code_ttl_seconds)
        tx.identity.add_session_code(
            digest(session_code), identity.subject, tenant_id, now, expires_at
        )
        tx.commit()
    return session_code


def _tenant_of(identity: VerifiedIdentity) -> str:
    if not SUBJECT.match(identity.subject):
        raise LoginRejected(
            "unsupported-subject", "The identity provider's subject cannot be used here."
        )
    if identity.tenant is None:
        return DEFAULT_TENANT
    if not TENANT.match(identity.tenant):
        raise LoginRejected("unsupported-tenant", "The ID token's tenant claim is not usable.")
    return identity.tenant


def _bootstrap_workspace(tx: UnitOfWork, tenant_id: str, subject: str, now: datetime) -> None:
    workspace = Workspace(
        id=new_id("wsp"),
        tenant_id=tenant_id,
        name=DEFAULT_WORKSPACE_NAME,
        description="Created for the first user of the tenant.",
        created_at=now,
        updated_at=now,
    )
    tx.repo.add_workspace(workspace)
    tx.identity.add_member(workspace.id, subject, Role.ADMIN, now)
    tx.identity.set_bootstrap_workspace(tenant_id, workspace.id)


def redeem_session_code(
    login: Login, *, session_code: str, workspace_id: str | None = None
) -> SessionGrant | WorkspaceSelection:
    """Exchange a session code for tokens, or list the workspaces to choose from.

    A code is redeemed (once) only when tokens are issued; a selection answer leaves it
    redeemable, until it expires, for a second call naming ``workspace_id``.

    :raises LoginRejected: unknown, used or expired code.
    :raises NotFound: ``workspace_id`` is not one of the user's workspaces.
    :raises MembershipRequired: the user belongs to no workspace.
    """
    code_hash = digest(session_code)
    now = _now()
    with login.uow(write=True) as tx:
        code = tx.identity.get_session_code(code_hash)
        if code is None or code.redeemed_at is not None or code.expires_at <= now:
            raise LoginRejected("invalid-session-code", "Unknown, used or expired session code.")
        if workspace_id is not None:
            membership = _membership_or_404(tx, code.subject, workspace_id)
            memberships = [membership]
        else:
            memberships = tx.identity.all_memberships(code.subject, SELECTION_LIMIT)
        if not memberships:
            raise MembershipRequired(
                "no-workspace", "You are not a member of any workspace; ask an admin to add you."
            )
        elif len(memberships) > 1:
            return WorkspaceSelection(memberships)
        else:
            membership = memberships[0]
        if not tx.identity.redeem_session_code(code_hash, now):
            raise LoginRejected("invalid-session-code", "Unknown, used or expired session code.")
        refresh, refresh_expires = _new_family(login, tx, code.subject, code.tenant_id, membership)
        tx.commit()
    return _grant(login, code.tenant_id, membership, refresh, refresh_expires)


def _membership_or_404(tx: UnitOfWork, subject: str, workspace_id: str) -> Membership:
    role = tx.repo.get_membership_role(workspace_id, subject)
    workspace = tx.repo.get_workspace(workspace_id) if role is not None else None
    if role is None or workspace is None:
        raise NotFound("workspace", workspace_id)
    return Membership(workspace.id, workspace.name, subject, role)


def _new_family(
    login: Login, tx: UnitOfWork, subject: str, tenant_id: str, membership: Membership
) -> tuple[str, datetime]:
    now = _now()
    token = "rt_" + _secret()
    expires_at = now + timedelta(seconds=login.settings.refresh_ttl_seconds)
    tx.identity.add_refresh_token(
        new_id("rft"),
        new_id("rtf"),
        digest(token),
        subject,
        tenant_id,
        membership.workspace_id,
        now,
        expires_at,
    )
    return token, expires_at


def _grant(
    login: Login, tenant_id: str, membership: Membership, refresh: str, refresh_expires: datetime
) -> SessionGrant:
    access = login.tokens.mint(
        subject=membership.subject,
        tenant_id=tenant_id,
        workspace_id=membership.workspace_id,
        role=membership.role.label,
    )
    return SessionGrant(access, login.tokens.ttl_seconds, refresh, refresh_expires, membership)


def refresh_session(
    login: Login, *, refresh_token: str, workspace_id: str | None = None
) -> SessionGrant:
    """Rotate a refresh token: a new session token with the role read from the database.

    Presenting a token that was already rotated revokes its whole family (someone holds a
    copy). Naming ``workspace_id`` switches to another workspace of the user.

    :raises LoginRejected: unknown, revoked, reused or expired refresh token.
    :raises NotFound: ``workspace_id`` is not one of the user's workspaces.
    :raises MembershipRequired: the user no longer belongs to the token's workspace.
    """
    now = _now()
    with login.uow(write=True) as tx:
        found = tx.identity.get_refresh_token(digest(refresh_token))
        failure: DomainError | None = _unusable(found, now)
        revoke = isinstance(failure, LoginRejected) and failure.slug == "refresh-token-reused"
        role: Role | None = None
        target = workspace_id
        if found is not None and failure is None:
            target = workspace_id or found.workspace_id
            role = tx.repo.get_membership_role(target, found.subject)
            if role is None and workspace_id is not None:
                raise NotFound("workspace", workspace_id)  # the token stays usable
            if role is None:
                failure, revoke = (
                    MembershipRequired(
                        "membership-revoked", "You are no longer a member of this workspace."
                    ),
                    True,
                )
            elif not tx.identity.mark_rotated(found.id, now):
                failure, revoke = _reused(), True  # a concurrent refresh rotated it first
        if failure is not None:
            if revoke and found is not None:
                tx.identity.revoke_family(found.family_id, now)
                tx.commit()
            raise failure
        assert found is not None and role is not None and target is not None
        token = "rt_" + _secret()
        tx.identity.add_refresh_token(
            new_id("rft"),
            found.family_id,
            digest(token),
            found.subject,
            found.tenant_id,
            target,
            now,
            found.expires_at,
        )
        workspace = tx.repo.get_workspace(target)
        tx.commit()
    name = workspace.name if workspace is not None else target
    membership = Membership(target, name, found.subject, role)
    return _grant(login, found.tenant_id, membership, token, found.expires_at)


def _reused() -> LoginRejected:
    return LoginRejected(
        "refresh-token-reused",
        "This refresh token was already used; every token of its login is now revoked.",
    )


def _unusable(found: RefreshToken | None, now: datetime) -> LoginRejected | None:
    if found is None:
        return LoginRejected("invalid-refresh-token", "Unknown refresh token.")
    if found.revoked_at is not None:
        return LoginRejected("refresh-token-revoked", "This refresh token was revoked.")
    if found.rotated_at is not None:
        return _reused()
    if found.expires_at <= now:
        return LoginRejected("refresh-token-expired", "This refresh token has expired.")
    return None
