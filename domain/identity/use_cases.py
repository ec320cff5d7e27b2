"""Login use cases: OIDC authorization code + PKCE, one-shot session codes, refresh tokens.

The flow (ADR 0014):

1. ``start_login`` stores a fresh state, nonce and PKCE verifier (hashed state, with an
   expiry) with the front end's login challenge, and returns the provider's authorize URL.
2. ``complete_login`` takes the state (single use), redeems the provider's code, finds or
   creates the user, bootstraps the tenant's first user into a default workspace as admin, and
   returns a one-shot session code for the front end.
3. ``redeem_session_code`` checks the front end's login verifier against the challenge the
   login started with (ADR 0031: a code handed to another browser is worthless), then turns it
   into a session token and a refresh token (or, with
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
import hmac
import re
import secrets
from datetime import datetime, timedelta

from domain.identity.errors import LoginNotConfigured, LoginRejected, MembershipRequired
from domain.identity.model import (
    LoginSettings,
    LoginStart,
    RefreshToken,
    SessionGrant,
    WorkspaceSelection,
)
from domain.identity.ports import IdentityProvider, SessionTokens, VerifiedIdentity
from domain.identity.repository import IdentityTx
from domain.kernel import DEFAULT_TENANT
from domain.kernel.actor import Actor
from domain.kernel.clock import Clock
from domain.kernel.errors import DomainError, NotFound
from domain.kernel.ids import new_id
from domain.kernel.unit_of_work import Store
from domain.workspaces import WorkspaceAccess, create_first_workspace

DEFAULT_WORKSPACE_NAME = "Default workspace"
SELECTION_LIMIT = 200  # workspaces listed for a selection (and considered at all)
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:|+-]{0,254}$")
TENANT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def digest(secret: str) -> str:
    """The stored form of a secret handed to a client."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 section 4.2)."""
    hashed = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(hashed).decode("ascii").rstrip("=")


def _secret() -> str:
    return secrets.token_urlsafe(32)


class Login:
    """Logging users in through an OIDC provider, and keeping their sessions."""

    def __init__(
        self,
        store: Store[IdentityTx],
        clock: Clock,
        provider: IdentityProvider | None,
        tokens: SessionTokens,
        settings: LoginSettings,
    ) -> None:
        self._store = store
        self._clock = clock
        self._provider = provider
        self._tokens = tokens
        self.settings = settings

    def _configured_provider(self) -> IdentityProvider:
        if self._provider is None:
            raise LoginNotConfigured()
        return self._provider

    def start_login(self, *, login_challenge: str) -> LoginStart:
        """Store a fresh state, nonce and PKCE verifier; return the provider's authorize URL.

        ``login_challenge`` is the S256 of a verifier only the calling front end holds; the
        session code this login ends with is redeemable only with that verifier.

        :raises LoginNotConfigured: no provider is configured.
        :raises IdentityProviderUnavailable: discovery failed.
        """
        provider = self._configured_provider()
        state, nonce, verifier = _secret(), _secret(), secrets.token_urlsafe(48)
        url = provider.authorization_url(
            state=state, nonce=nonce, code_challenge=pkce_challenge(verifier)
        )
        now = self._clock.now()
        expires_at = now + timedelta(seconds=self.settings.state_ttl_seconds)
        with self._store(write=True) as tx:
            tx.identity.purge_expired(now)
            tx.identity.add_login_state(
                digest(state), nonce, verifier, login_challenge, now, expires_at
            )
            tx.commit()
        return LoginStart(url, state, expires_at)

    def complete_login(
        self, *, state: str, code: str | None = None, error: str | None = None
    ) -> str:
        """Finish a login at the callback; return a one-shot session code for the front end.

        :raises LoginNotConfigured: no provider is configured.
        :raises LoginRejected: unknown, used or expired state; the provider answered with an
            ``error`` instead of a code, refused the code, or its ID token did not validate;
            the subject or tenant is unusable.
        :raises IdentityProviderUnavailable: the provider is down or answered garbage.
        """
        provider = self._configured_provider()
        now = self._clock.now()
        with self._store(write=True) as tx:
            taken = tx.identity.take_login_state(digest(state))
            tx.commit()  # burnt even if what follows fails: a state is good for one attempt only
        if taken is None:
            raise LoginRejected("invalid-state", "Unknown or already used login state.")
        if taken.expires_at <= now or taken.login_challenge is None:
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
        now = self._clock.now()
        with self._store(write=True) as tx:
            tx.identity.upsert_user(
                new_id("usr"), tenant_id, identity.subject, identity.email, identity.name, now
            )
            if tx.identity.claim_tenant_bootstrap(tenant_id, identity.subject, now):
                workspace = create_first_workspace(
                    tx,
                    tenant_id,
                    identity.subject,
                    DEFAULT_WORKSPACE_NAME,
                    "Created for the first user of the tenant.",
                    now,
                )
                tx.identity.set_bootstrap_workspace(tenant_id, workspace.id)
            expires_at = now + timedelta(seconds=self.settings.session_code_ttl_seconds)
            tx.identity.add_session_code(
                digest(session_code),
                identity.subject,
                tenant_id,
                now,
                expires_at,
                login_challenge=taken.login_challenge,
            )
            tx.commit()
        return session_code

    def redeem_session_code(
        self, *, session_code: str, login_verifier: str, workspace_id: str | None = None
    ) -> SessionGrant | WorkspaceSelection:
        """Exchange a session code for tokens, or list the workspaces to choose from.

        A code is redeemed (once) only when tokens are issued; a selection answer leaves it
        redeemable, until it expires, for a second call naming ``workspace_id``. The code is
        redeemable only with the verifier whose challenge started its login; a wrong verifier
        burns the code (it reached a browser that did not start the login).

        :raises LoginRejected: unknown, used or expired code, or the wrong login verifier.
        :raises NotFound: ``workspace_id`` is not one of the user's workspaces.
        :raises MembershipRequired: the user belongs to no workspace.
        """
        code_hash = digest(session_code)
        now = self._clock.now()
        with self._store(write=True) as tx:
            code = tx.identity.get_session_code(code_hash)
            if code is None or code.redeemed_at is not None or code.expires_at <= now:
                raise _invalid_session_code()
            if not _verifies(login_verifier, code.login_challenge):
                tx.identity.redeem_session_code(code_hash, now)
                tx.commit()
                raise _invalid_session_code()
            if workspace_id is not None:
                access = tx.workspaces.access(code.subject, workspace_id)
                if access is None:
                    raise NotFound("workspace", workspace_id)
                accesses = [access]
            else:
                accesses = tx.workspaces.accesses(code.subject, None, SELECTION_LIMIT - 1)
            if not accesses:
                raise MembershipRequired(
                    "no-workspace",
                    "You are not a member of any workspace; ask an admin to add you.",
                )
            if len(accesses) > 1:
                return WorkspaceSelection(accesses)
            access = accesses[0]
            if not tx.identity.redeem_session_code(code_hash, now):
                raise _invalid_session_code()
            family, refresh, refresh_expires = self._new_family(
                tx, code.subject, code.tenant_id, access
            )
            tx.audit.append(
                _user(access), "login.succeeded", "user", access.subject, {"login_id": family}, now
            )
            tx.commit()
        return self._grant(code.tenant_id, access, refresh, refresh_expires, family)

    def refresh_session(
        self, *, refresh_token: str, workspace_id: str | None = None
    ) -> SessionGrant:
        """Rotate a refresh token: a new session token with the role read from the database.

        Presenting a token that was already rotated revokes its whole family (someone holds a
        copy). Naming ``workspace_id`` switches to another workspace of the user.

        :raises LoginRejected: unknown, revoked, reused or expired refresh token.
        :raises NotFound: ``workspace_id`` is not one of the user's workspaces.
        :raises MembershipRequired: the user no longer belongs to the token's workspace.
        """
        now = self._clock.now()
        with self._store(write=True) as tx:
            found = tx.identity.get_refresh_token(digest(refresh_token))
            failure: DomainError | None = _unusable(found, now)
            revoke = isinstance(failure, LoginRejected) and failure.slug == "refresh-token-reused"
            access: WorkspaceAccess | None = None
            if found is not None and failure is None:
                access = tx.workspaces.access(found.subject, workspace_id or found.workspace_id)
                if access is None and workspace_id is not None:
                    raise NotFound("workspace", workspace_id)  # the token stays usable
                if access is None:
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
            assert found is not None and access is not None
            token = "rt_" + _secret()
            tx.identity.add_refresh_token(
                new_id("rft"),
                found.family_id,
                digest(token),
                found.subject,
                found.tenant_id,
                access.workspace_id,
                now,
                found.expires_at,
            )
            data = {"login_id": found.family_id, "from_workspace_id": found.workspace_id}
            tx.audit.append(_user(access), "session.refreshed", "user", access.subject, data, now)
            tx.commit()
        return self._grant(found.tenant_id, access, token, found.expires_at, found.family_id)

    def _new_family(
        self, tx: IdentityTx, subject: str, tenant_id: str, access: WorkspaceAccess
    ) -> tuple[str, str, datetime]:
        now = self._clock.now()
        token = "rt_" + _secret()
        family = new_id("rtf")
        expires_at = now + timedelta(seconds=self.settings.refresh_ttl_seconds)
        tx.identity.add_refresh_token(
            new_id("rft"),
            family,
            digest(token),
            subject,
            tenant_id,
            access.workspace_id,
            now,
            expires_at,
        )
        return family, token, expires_at

    def _grant(
        self,
        tenant_id: str,
        access: WorkspaceAccess,
        refresh: str,
        refresh_expires: datetime,
        login_id: str,
    ) -> SessionGrant:
        # ``login_id`` (the refresh family) lets a revoked login refuse its session tokens too.
        token = self._tokens.mint(
            subject=access.subject,
            tenant_id=tenant_id,
            workspace_id=access.workspace_id,
            role=access.role.label,
            login_id=login_id,
        )
        return SessionGrant(token, self._tokens.ttl_seconds, refresh, refresh_expires, access)


def _user(access: WorkspaceAccess) -> Actor:
    """The user a login or refresh acts as, in the workspace it opens (the audit's scope)."""
    return Actor(access.workspace_id, access.subject, access.role)


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


def _invalid_session_code() -> LoginRejected:
    # One answer for unknown, used, expired and wrongly bound codes: no oracle.
    return LoginRejected("invalid-session-code", "Unknown, used or expired session code.")


def _verifies(login_verifier: str, login_challenge: str | None) -> bool:
    if login_challenge is None:
        return False
    try:
        challenge = pkce_challenge(login_verifier)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(challenge, login_challenge)


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
