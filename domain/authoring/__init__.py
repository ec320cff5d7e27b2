"""Authoring: conversational sessions that derive a member's draft, the derivers behind them,
and the template catalog."""

from domain.authoring.deriver import Derivation, Deriver, OfflineDeriver
from domain.authoring.errors import ConcurrentTurn, ModelUnusable
from domain.authoring.model import AuthoringSession, TurnResult, approval_preview
from domain.authoring.repository import AuthoringRepository, AuthoringTx
from domain.authoring.templates import Template, TemplateParameter, catalog
from domain.authoring.use_cases import Authoring

__all__ = [
    "Authoring",
    "AuthoringRepository",
    "AuthoringSession",
    "AuthoringTx",
    "ConcurrentTurn",
    "Derivation",
    "Deriver",
    "ModelUnusable",
    "OfflineDeriver",
    "Template",
    "TemplateParameter",
    "TurnResult",
    "approval_preview",
    "catalog",
]
