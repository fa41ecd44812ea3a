"""A suspicious activity report for one AML case, as staff file it with the regulator: the
subject, the case and its decision, every alert with the records behind it (deposits,
withdrawals, trades, sign-ins, sanctions matches), the comments, and the case's entries in
the audit chain (with their hashes, so the report can be checked against the chain).

``sar_report`` reads it; ``sar_csv`` and ``sar_pdf`` write it with the platform's one CSV and
PDF writers (``portfolio.statements``); ``sar_export`` records the export in the audit chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import KycProfile
from ledger.models import Transfer, Withdrawal
from orders.spot.models import SpotTrade
from portfolio.statements import sections_csv, tables_pdf
from trading.audit import audit_append
from trading.formatting import decimal_string, utc_string
from trading.models import AuditRecord

from .models import AmlCase, AmlSignIn


@dataclass
class SarReport:
    case: AmlCase
    heading: list[tuple[str, str]]
    sections: list[tuple[str, list[str], list[list[str]]]]


def _at(value) -> str:
    return utc_string(value) if value else ""


def _records(ids: set[str], user_id: int) -> list[list[str]]:
    """The records the alerts name, one row each: time, kind, id, asset, amount, detail."""
    by_kind: dict[str, list[str]] = {}
    for record_id in ids:
        kind, _, key = record_id.partition(":")
        by_kind.setdefault(kind, []).append(key)
    rows = []
    for transfer in Transfer.objects.filter(pk__in=by_kind.get("transfer", [])):
        rows.append(
            [_at(transfer.created_at), f"transfer ({transfer.code})", transfer.pk, transfer.asset,
             decimal_string(transfer.amount), transfer.reference]
        )  # fmt: skip
    withdrawal_ids = [int(k) for k in by_kind.get("withdrawal", []) if k.isdigit()]
    for withdrawal in Withdrawal.objects.filter(pk__in=withdrawal_ids, user_id=user_id):
        beneficiary = withdrawal.beneficiary or {}
        detail = f"to {withdrawal.address}; {withdrawal.status}"
        if beneficiary:
            detail += f"; beneficiary {beneficiary.get('name', '')} ({beneficiary.get('wallet_type', '')})"
        rows.append(
            [_at(withdrawal.created_at), "withdrawal", str(withdrawal.pk), withdrawal.asset,
             decimal_string(withdrawal.amount), detail]
        )  # fmt: skip
    trade_ids = [int(k) for k in by_kind.get("trade", []) if k.isdigit()]
    for trade in SpotTrade.objects.filter(pk__in=trade_ids):
        side = trade.taker_side if trade.taker_user_id == user_id else ("sell" if trade.taker_side == "buy" else "buy")
        rows.append(
            [_at(trade.created_at), f"trade ({side})", str(trade.pk), trade.symbol,
             decimal_string(trade.quantity), f"at {decimal_string(trade.price)}"]
        )  # fmt: skip
    signin_ids = [int(k) for k in by_kind.get("signin", []) if k.isdigit()]
    for signin in AmlSignIn.objects.filter(pk__in=signin_ids):
        rows.append(
            [_at(signin.at), "sign-in", str(signin.pk), "", "",
             f"from {signin.ip or '?'} {signin.country or ''} device {signin.device[:12]}".strip()]
        )  # fmt: skip
    for kind in sorted(set(by_kind) - {"transfer", "withdrawal", "trade", "signin"}):
        for key in sorted(by_kind[kind]):
            rows.append(["", kind, key, "", "", ""])  # sanctions matches, subjects: as the alert names them
    return sorted(rows, key=lambda row: (row[0] == "", row[0], row[1], row[2]))


def sar_report(*, case_id: int, generated_by=None) -> SarReport:
    case = AmlCase.objects.select_related("user", "assignee", "decided_by").get(pk=case_id)
    user = case.user
    kyc = KycProfile.objects.filter(user=user).first()
    alerts = list(case.alerts.order_by("at", "id"))
    heading = [
        ("report", f"Suspicious activity report, AML case {case.pk}"),
        ("generated_at", utc_string(timezone.now())),
        ("generated_by", getattr(generated_by, "email", "") or "system"),
        ("subject_user_id", str(user.pk)),
        ("subject_email", user.email),
        ("subject_name", kyc.full_name if kyc else ""),
        ("subject_country", kyc.country if kyc else ""),
        ("subject_date_of_birth", kyc.date_of_birth.isoformat() if kyc and kyc.date_of_birth else ""),
        ("subject_kyc_status", kyc.status if kyc else ""),
        ("subject_joined", _at(user.date_joined)),
        ("case_status", case.status),
        ("case_score", decimal_string(case.score)),
        ("case_opened_at", _at(case.opened_at)),
        ("case_closed_at", _at(case.closed_at)),
        ("case_assignee", case.assignee.email if case.assignee else ""),
        ("case_decided_by", case.decided_by.email if case.decided_by else ""),
        ("case_decision_note", case.decision_note),
        ("account_frozen", "yes" if case.account_frozen else "no"),
    ]
    alert_rows = [
        [_at(a.at), a.rule_code, str(a.rule_version), a.band, str(a.score), decimal_string(a.weighted_score),
         decimal_string(a.value) if a.value is not None else "", a.trigger, " ".join(a.transactions)]
        for a in alerts
    ]  # fmt: skip
    records = _records({t for a in alerts for t in a.transactions}, user.pk)
    comments = [[_at(c.at), c.author.email if c.author else "", c.body] for c in case.comments.select_related("author")]
    chain = AuditRecord.objects.filter(target_type=AmlCase._meta.label_lower, target_id=str(case.pk))
    audit = [[str(r.seq), _at(r.at), r.actor_label, r.action, r.hash] for r in chain.order_by("seq")]
    sections = [
        ("alerts", ["at", "rule", "version", "band", "score", "weighted", "value", "trigger", "records"], alert_rows),
        ("records", ["at", "kind", "id", "asset / market", "amount", "detail"], records),
        ("comments", ["at", "author", "comment"], comments),
        ("audit_chain", ["seq", "at", "actor", "action", "hash"], audit),
    ]
    return SarReport(case=case, heading=heading, sections=sections)


def sar_csv(report: SarReport) -> bytes:
    return sections_csv(report.heading, report.sections).encode()


_TITLES = {
    "alerts": "Alerts",
    "records": "Records behind the alerts",
    "comments": "Comments",
    "audit_chain": "Audit chain",
}


def sar_pdf(report: SarReport) -> bytes:
    heading = [("Title", f"Suspicious activity report: AML case {report.case.pk}")]
    heading += [("Normal", f"<b>{name.replace('_', ' ')}</b>: {_escape(value)}") for name, value in report.heading[1:]]
    sections = [(_TITLES[name], header, rows) for name, header, rows in report.sections]
    return tables_pdf(title=f"SAR case {report.case.pk}", heading=heading, sections=sections, empty="None.")


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sar_export(*, case_id: int, actor, fmt: str) -> tuple[bytes, str]:
    """The report as ``fmt`` (``csv`` or ``pdf``) and its file name; the export (who, when,
    the file's SHA-256) is appended to the audit chain."""
    report = sar_report(case_id=case_id, generated_by=actor)
    body = sar_pdf(report) if fmt == "pdf" else sar_csv(report)
    with transaction.atomic():
        audit_append(
            actor=actor,
            action="aml.case_sar_exported",
            target=report.case,
            data={"format": fmt, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)},
        )
    return body, f"sar-case-{case_id}-{timezone.now():%Y%m%dT%H%M%SZ}.{fmt}"
