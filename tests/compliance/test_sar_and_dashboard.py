"""The SAR export of a case (PDF and CSV, with its alerts, the records behind them, comments
and the case's audit chain; every export audited) and the compliance dashboard's figures."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from pypdf import PdfReader

from compliance import services
from compliance.dashboard import compliance_dashboard
from compliance.models import AmlCase
from trading.models import AuditRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(user, money, eager_tasks, staff):
    """A structuring case: four deposits just under the threshold, then most of it withdrawn."""
    for amount in ("9600", "9750", "9800", "9900"):
        money.deposit(user, amount)
    money.withdraw(user, "38000")
    services.aml_scan(since=timezone.now() - timedelta(hours=1))
    case = AmlCase.objects.get(user=user)
    services.case_comment(case_id=case.pk, actor=staff, body="Deposits from one cash desk; asked for the source.")
    return case


def test_the_sar_csv_has_the_subject_the_alerts_their_records_and_the_audit_chain(case, admin_client_otp, user):
    response = admin_client_otp.get(f"/admin/compliance/amlcase/{case.pk}/sar.csv")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert f"sar-case-{case.pk}-" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    heading = {row[0]: row[1] for row in rows if len(row) == 2}
    assert heading["subject_email"] == user.email and heading["case_status"] == "open"
    assert Decimal(heading["case_score"]) == case.score
    sections = {row[0]: i for i, row in enumerate(rows) if len(row) == 1}
    alerts = rows[sections["alerts"] + 2 : sections["records"] - 1]
    assert {row[1] for row in alerts} >= {"STRUCTURING"}
    records = rows[sections["records"] + 2 : sections["comments"] - 1]
    deposits = [r for r in records if r[1] == "transfer (deposit)"]
    assert sorted(Decimal(r[4]) for r in deposits) == [Decimal(x) for x in ("9600", "9750", "9800", "9900")]
    assert any(r[1] == "withdrawal" and Decimal(r[4]) == 38000 for r in records)
    comments = rows[sections["comments"] + 2 : sections["audit_chain"] - 1]
    assert comments[0][2] == "Deposits from one cash desk; asked for the source."
    chain = rows[sections["audit_chain"] + 2 :]
    stored = AuditRecord.objects.filter(target_type="compliance.amlcase", target_id=str(case.pk)).order_by("seq")
    # the report's chain is the chain as it was (the export itself is appended after)
    assert [(r[0], r[4]) for r in chain] == [(str(a.seq), a.hash) for a in stored][: len(chain)]
    assert "aml.case_opened" in [r[3] for r in chain]
    exported = AuditRecord.objects.filter(action="aml.case_sar_exported", target_id=str(case.pk)).get()
    assert exported.data["format"] == "csv" and len(exported.data["sha256"]) == 64


def test_the_sar_pdf_reads_back(case, admin_client_otp, user):
    response = admin_client_otp.get(f"/admin/compliance/amlcase/{case.pk}/sar.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert f"AML case {case.pk}" in text and user.email in text and "STRUCTURING" in text
    assert "Records behind the alerts" in text and "Audit chain" in text
    assert admin_client_otp.get(f"/admin/compliance/amlcase/{case.pk}/sar.doc").status_code == 404
    page = admin_client_otp.get(f"/admin/compliance/amlcase/{case.pk}/change/").content.decode()
    assert f"/admin/compliance/amlcase/{case.pk}/sar.pdf" in page


def test_the_sar_is_for_staff_only(case, client, user):
    client.force_login(user)
    response = client.get(f"/admin/compliance/amlcase/{case.pk}/sar.csv")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not AuditRecord.objects.filter(action="aml.case_sar_exported").exists()


def test_the_dashboard_counts_cases_alerts_and_the_sla(case, admin_client_otp, settings):
    board = compliance_dashboard()
    assert (board.open_cases, board.escalated, board.unassigned, board.over_sla) == (1, 0, 1, 0)
    assert {row["rule_code"] for row in board.alerts_by_rule} >= {"STRUCTURING", "RAPID_IN_OUT"}
    assert all(row["cases"] == 1 for row in board.alerts_by_rule)
    later = compliance_dashboard(now=timezone.now() + timedelta(hours=settings.AML_CASE_SLA_HOURS + 1))
    assert later.over_sla == 1 and later.oldest_age_hours > settings.AML_CASE_SLA_HOURS
    page = admin_client_otp.get("/admin/compliance/amlcase/dashboard/").content.decode()
    assert 'data-figure="open_cases">1<' in page and 'data-rule="STRUCTURING"' in page
    index = admin_client_otp.get("/admin/").content.decode()
    assert "AML cases open" in index
