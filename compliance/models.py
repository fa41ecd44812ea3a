"""Compliance reads every app and is read by none.

The audit trail itself is the kernel's (``trading.models.AuditRecord``, written by
``trading.audit.audit_append``); compliance shows it to its staff in the admin through this
proxy, which keeps the admin address and the permissions it had when compliance owned it.
"""

from trading.models import AuditRecord as KernelAuditRecord


class AuditRecord(KernelAuditRecord):
    class Meta:
        proxy = True
        verbose_name = "audit record"
