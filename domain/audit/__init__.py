"""The audit log: an append-only record of who changed what, written by every capability's
use cases in their own transaction (``tx.audit.append``)."""

from domain.audit.model import AuditEntry
from domain.audit.repository import AuditLog, AuditTx

__all__ = ["AuditEntry", "AuditLog", "AuditTx"]
