"""Every change made in the staff console leaves an audit record: Django admin writes a log
entry for each add, change and delete, and each entry is recorded here.

A single entry is saved normally (``post_save``). Admin writes the entries of a multi-object
action ("delete selected") with ``bulk_create``, which sends no signal, so that path is
wrapped. Connected by ``TradingConfig.ready``.
"""

from __future__ import annotations

import functools
import json

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry, LogEntryManager
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_save

from .audit import audit_append

_ADMIN_ACTIONS = {ADDITION: "admin.addition", CHANGE: "admin.change", DELETION: "admin.deletion"}


def audit_admin_entry(entry: LogEntry) -> None:
    """Record one admin log entry (an add, change or delete made in Django admin)."""
    content_type = ContentType.objects.get_for_id(entry.content_type_id) if entry.content_type_id else None
    try:
        change = json.loads(entry.change_message) if entry.change_message else []
    except ValueError:
        change = entry.change_message
    audit_append(
        actor=entry.user,
        action=_ADMIN_ACTIONS.get(entry.action_flag, f"admin.flag_{entry.action_flag}"),
        target_type=f"{content_type.app_label}.{content_type.model}" if content_type else "",
        target_id=entry.object_id or "",
        data={"object_repr": entry.object_repr, "change": change, "log_entry_id": entry.pk},
    )


def _on_admin_log_entry(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        audit_admin_entry(instance)


def install() -> None:
    post_save.connect(_on_admin_log_entry, sender=LogEntry, dispatch_uid="trading.audit_admin_log")
    original = LogEntryManager.log_actions
    if getattr(original, "_audited", False):
        return

    @functools.wraps(original)
    def log_actions(self, *args, **kwargs):
        entries = original(self, *args, **kwargs)
        bulk = type(self).log_action is LogEntryManager.log_action  # else each entry was saved one by one
        if bulk and isinstance(entries, list) and len(entries) > 1:
            for entry in entries:
                audit_admin_entry(entry)
        return entries

    log_actions._audited = True
    LogEntryManager.log_actions = log_actions
