"""An OpenID Connect relying party over httpx and PyJWT (implements ``IdentityProvider``).

Discovery (``/.well-known/openid-configuration``) and the JWKS are fetched lazily and cached
per process for ``cache_seconds``: one document each, so the cache is bounded by construction.
A token signed by a key the cached JWKS lacks triggers one re-fetch, at most every
``JWKS_COOLDOWN_SECONDS`` (key rotation without letting garbage ``kid``s hammer the provider).

Every failure becomes a domain error: the provider unreachable, slow or answering garbage is
``IdentityProviderUnavailable`` (502); a refused code or an ID token that does not validate is
``LoginRejected`` (401). Algorithms come from settings, never from the token.
"""

from __future__ import annotations

import hmac
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from domain.identity import IdentityProviderUnavailable, LoginRejected, VerifiedIdentity

JWKS_COOLDOWN_SECONDS = 30.0
_LEEWAY_SECONDS = 30
_MAX_DOCUMENT_BYTES = 256 * 1024


class OidcProvider:
    """The configured issuer, reached with the authorization code flow and PKCE (S256)."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        algorithms: tuple[str, ...] = ("RS256", "ES256"),
        scopes: str = "openid email profile",
        tenant_claim: str | None = None,
        timeout: float = 5.0,
        cache_seconds: float = 300.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._algorithms = list(algorithms)
        self._scopes = scopes
        self._tenant_claim = tenant_claim
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._discovery: tuple[float, dict[str, str]] | None = None
        self._jwks: tuple[float, jwt.PyJWKSet] | None = None

    # -- IdentityProvider ----------------------------------------------------------------

    def authorization_url(self, *, state: str, nonce: str, code_challenge: str) -> str:
        endpoint = self._metadata()["authorization_endpoint"]
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": self._redirect_uri,
                "scope": self._scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def exchange_code(self, *, code: str, code_verifier: str, nonce: str) -> VerifiedIdentity:
        metadata = self._metadata()
        response = self._call(
            "POST",
            metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._redirect_uri,
                "code_verifier": code_verifier,
            },
            auth=(self._client_id, self._client_secret),
            headers={"Accept": "application/json"},
        )
        if response.status_code in (400, 401):
            raise LoginRejected(
                "authorization-code-rejected",
                "The identity provider refused the authorization code; log in again.",
            )
        body = _json_object(response, "token response")
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise IdentityProviderUnavailable("The identity provider returned no ID token.")
        claims = self._validate(id_token, nonce)
        return VerifiedIdentity(
            subject=str(claims["sub"]),
            email=_text(claims.get("email"), 320),
            name=_text(claims.get("name"), 200),
            tenant=None if self._tenant_claim is None else _tenant(claims, self._tenant_claim),
        )

    # -- discovery and keys --------------------------------------------------------------

    def _metadata(self) -> dict[str, str]:
        with self._lock:
            cached = self._discovery
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        response = self._call("GET", f"{self.issuer}/.well-known/openid-configuration")
        if response.status_code != 200:
            raise IdentityProviderUnavailable(
                f"OIDC discovery answered HTTP {response.status_code}."
            )
        document = _json_object(response, "discovery document")
        issued_as = str(document.get("issuer", ""))
        if issued_as.rstrip("/") != self.issuer:
            raise IdentityProviderUnavailable(
                "The discovery document names another issuer than the configured one."
            )
        # ID tokens carry the issuer exactly as discovery spells it: some providers end it with
        # a slash (Auth0), most do not, and `iss` is compared as a string.
        metadata: dict[str, str] = {"issuer": issued_as}
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(key)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise IdentityProviderUnavailable(f"The discovery document lacks '{key}'.")
            metadata[key] = value
        with self._lock:
            self._discovery = (time.monotonic(), metadata)
        return metadata

    def _keys(self, *, refresh: bool = False) -> jwt.PyJWKSet:
        with self._lock:
            cached = self._jwks
        if cached is not None:
            age = time.monotonic() - cached[0]
            fresh = age < self._cache_seconds
            if (fresh and not refresh) or (refresh and age < JWKS_COOLDOWN_SECONDS):
                return cached[1]
        response = self._call("GET", self._metadata()["jwks_uri"])
        if response.status_code != 200:
            raise IdentityProviderUnavailable(f"The JWKS answered HTTP {response.status_code}.")
        try:
            keys = jwt.PyJWKSet.from_dict(_json_object(response, "JWKS"))
        except jwt.PyJWTError:
            raise IdentityProviderUnavailable("The JWKS holds no usable key.") from None
        with self._lock:
            self._jwks = (time.monotonic(), keys)
        return keys

    def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        for refresh in (False, True):
            keys = self._keys(refresh=refresh)
            candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
            if kid is None and len(candidates) == 1 or kid is not None and candidates:
                return candidates[0]
        raise LoginRejected("id-token-rejected", "The ID token is signed by an unknown key.")

    def _validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise IdentityProviderUnavailable("The ID token is not a JWT.") from None
        if header.get("alg") not in self._algorithms:
            raise LoginRejected(
                "id-token-rejected", "The ID token's signing algorithm is not accepted."
            )
        kid = header.get("kid")
        key = self._signing_key(kid if isinstance(kid, str) else None)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=self._algorithms,
                audience=self._client_id,
                issuer=self._metadata()["issuer"],
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise LoginRejected(
                "id-token-rejected", f"The ID token does not validate: {_reason(exc)}."
            ) from None
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise LoginRejected("id-token-rejected", "The ID token's nonce does not match.")
        azp = claims.get("azp")
        if azp is not None and azp != self._client_id:
            raise LoginRejected("id-token-rejected", "The ID token was issued to another client.")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise LoginRejected("id-token-rejected", "The ID token has no usable subject.")
        return claims

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
                response = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable(
                f"The identity provider is unreachable ({type(exc).__name__})."
            ) from None
        if response.status_code >= 500:
            raise IdentityProviderUnavailable(
                f"The identity provider answered HTTP {response.status_code}."
            )
        return response


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    if len(response.content) > _MAX_DOCUMENT_BYTES:
        raise IdentityProviderUnavailable(f"The identity provider's {what} is too large.")
    try:
        body = response.json()
    except ValueError:
        raise IdentityProviderUnavailable(f"The identity provider's {what} is not JSON.") from None
    if not isinstance(body, dict):
        raise IdentityProviderUnavailable(f"The identity provider's {what} is not an object.")
    return body


def _text(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _tenant(claims: dict[str, Any], claim: str) -> str:
    value = claims.get(claim)
    if not isinstance(value, str) or not value:
        raise LoginRejected("unsupported-tenant", f"The ID token lacks the claim '{claim}'.")
    return value


_REASONS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "it has expired"),
    (jwt.ImmatureSignatureError, "it is not valid yet"),
    (jwt.InvalidAudienceError, "it was issued for another audience"),
    (jwt.InvalidIssuerError, "it was issued by another issuer"),
    (jwt.MissingRequiredClaimError, "it lacks a required claim"),
    (jwt.InvalidSignatureError, "its signature does not verify"),
    (jwt.InvalidAlgorithmError, "its algorithm does not match the key"),
]


def _reason(exc: jwt.PyJWTError) -> str:
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return "it is malformed"
