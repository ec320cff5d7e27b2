"""Access: what a credential is worth at each request (membership re-checked, ADR 0032) and
workspace API keys for automation (ADR 0033)."""

from domain.access.errors import ApiKeyRejected
from domain.access.model import ApiKey, IssuedApiKey, KeyGrant
from domain.access.repository import AccessRepository, AccessTx
from domain.access.use_cases import KEY_PREFIX, Access, key_digest

__all__ = [
    "KEY_PREFIX",
    "Access",
    "AccessRepository",
    "AccessTx",
    "ApiKey",
    "ApiKeyRejected",
    "IssuedApiKey",
    "KeyGrant",
    "key_digest",
]
