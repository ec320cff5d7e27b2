"""The audit log: an append-only record of who changed what, written by every capability's
use cases in their own transaction (``tx.audit.append``)."""

from domain.audit.model import AuditEntry, AuditFilter
from domain.audit.repository import AuditLog, AuditTx
from domain.audit.use_cases import Audit

__all__ = ["Audit", "AuditEntry", "AuditFilter", "AuditLog", "AuditTx"]
