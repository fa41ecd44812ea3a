"""AML writes: evaluating traders' activity against the live rules, raising alerts, opening
and working cases. Every case action is in the audit trail, in the transaction of the action.

Evaluation runs after the event's commit (a Celery task queued on commit, see ``receivers``),
never inside a deposit, a withdrawal, a sign-in or order entry.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from risk import core as risk_core
from risk.services import trading_state_set
from trading.audit import audit_append
from trading.errors import Conflict, NotFound, ValidationFailed

from . import selectors
from .models import OPEN_STATUSES, AmlAlert, AmlCase, AmlCaseComment, AmlSignIn, CaseStatus
from .rules import (
    DEPOSIT,
    MEASURES,
    WITHDRAWAL,
    Context,
    Hit,
    Raised,
    Record,
    Rule,
    evaluate,
    suppress,
    total_score,
)
from .rules import score as score_hit
from .rules.measures import VELOCITY, velocity_measure

_AML_LOCK = 0x414D4C  # "AML": with the user's id, one evaluation per trader at a time


@dataclass
class Outcome:
    """What one evaluation or scan did."""

    alerts: list[AmlAlert | StoredAlert] = field(default_factory=list)
    cases_opened: list[AmlCase] = field(default_factory=list)
    cases_updated: list[AmlCase] = field(default_factory=list)
    triggers: int = 0
    users: int = 0
    seconds: float = 0.0

    def by_rule(self) -> Counter:
        return Counter(f"{a.rule_code} v{a.rule_version} {a.band}" for a in self.alerts)


def fingerprint(*, user_id: int, hit: Hit) -> str:
    """The same rule version and band on the same records is the same alert, however often
    (and by whichever path) it is found."""
    key = "|".join([str(user_id), hit.rule_code, str(hit.rule_version), hit.band, *hit.record_ids])
    return hashlib.sha256(key.encode()).hexdigest()


def hits_for_user(
    *,
    rules: list[Rule],
    history: selectors.History,
    user_id: int,
    since: datetime | None = None,
    trigger_id=None,
    only: Mapping[str, set[str]] | None = None,
) -> list[Hit]:
    """The rules' hits on one trader at each of their records since ``since`` (or at the one
    record ``trigger_id``; or, with ``only``, at those of them and by the rules it names for
    each), in time order, before suppression."""
    records = history.records.get(user_id, [])
    hits = []
    countries = settings.AML_HIGH_RISK_COUNTRIES
    for record in records:
        if trigger_id is not None and record.id != trigger_id:
            continue
        if only is not None and record.id not in only:
            continue
        if since is not None and record.at < since:
            continue
        if record.id.startswith("last_activity:"):
            continue
        ctx = Context(
            user_id=user_id,
            records=records,
            trigger=record,
            joined_at=history.joined_at.get(user_id),
            kyc_country=history.kyc_country.get(user_id, ""),
            others=history.others.get(user_id, ()),
            high_risk_countries=countries,
            totals=history.totals.get(user_id),
        )
        judging = rules if only is None else [rule for rule in rules if rule.code in only[record.id]]
        hits.extend(evaluate(judging, ctx, MEASURES))
    return hits


def _raised_before(*, user_id: int, since: datetime) -> list[Raised]:
    rows = AmlAlert.objects.filter(user_id=user_id, at__gte=since).values_list("rule_code", "score", "at")
    return [Raised(code, score, at) for code, score, at in rows]


def _lock_user(user_id: int) -> None:
    """An advisory lock, not the user's row: order entry and withdrawals lock that row, and
    an evaluation must never make them wait."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_AML_LOCK, user_id])


def aml_evaluate(*, user_id: int, trigger: str, source: str = "realtime") -> Outcome:
    """Run the live rules on one trader as of one of their records (``transfer:<id>``,
    ``withdrawal:<id>``, ``trade:<id>``, ``signin:<id>``); store the alerts it raises and open
    or update the trader's case. A trigger that is not (or no longer) there raises nothing."""
    started = time.perf_counter()
    outcome = Outcome(users=1)
    now = timezone.now()
    # what the rules read about this trigger (the live rules and the trigger in one statement,
    # the rest in one round trip: see ``selectors.trigger_history``), outside any transaction:
    # an evaluation that raises nothing writes nothing and locks nothing
    rules, history = selectors.trigger_history(user_id=user_id, trigger=trigger, now=now)
    if not rules:
        return outcome
    if history is None:
        start = now - selectors.horizon(rules) - timedelta(days=1)
        history = selectors.history_for(user_ids=[user_id], start=start, trigger=trigger)
    hits = hits_for_user(rules=rules, history=history, user_id=user_id, trigger_id=trigger)
    outcome.triggers = 1
    if hits:
        # suppression and the writes under the trader's lock: a concurrent evaluation's
        # alerts are seen before these are stored
        with transaction.atomic(durable=True):
            _lock_user(user_id)
            windows = {rule.code: rule.window for rule in rules}
            earliest = min(hit.at for hit in hits) - max(windows.values())
            hits = suppress(hits, _raised_before(user_id=user_id, since=earliest), windows)
            outcome.alerts = _store(user_id=user_id, hits=hits, source=source)
            if outcome.alerts:
                _consider_case(user_id=user_id, outcome=outcome)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _lock_users(user_ids: list[int]) -> None:
    """The AML lock of several traders, in id order (as every multi-trader holder takes them)."""
    if connection.vendor == "postgresql" and user_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, u) FROM unnest(%s::int[]) AS u ORDER BY u",
                [_AML_LOCK, sorted(user_ids)],
            )
            cursor.fetchall()


def _raised_before_many(*, user_ids: list[int], since: datetime) -> dict[int, list[Raised]]:
    raised: dict[int, list[Raised]] = {}
    rows = AmlAlert.objects.filter(user_id__in=user_ids, at__gte=since).values_list(
        "user_id", "rule_code", "score", "at"
    )
    for user_id, code, score, at in rows:
        raised.setdefault(user_id, []).append(Raised(code, score, at))
    return raised


def _known_fingerprints(keys: list[str]) -> set[str]:
    """Which of these alert fingerprints are stored already: one array parameter on
    PostgreSQL, not thousands; a plain IN on the embedded mode's SQLite."""
    if connection.vendor != "postgresql":
        return set(AmlAlert.objects.filter(fingerprint__in=keys).values_list("fingerprint", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT fingerprint FROM {AmlAlert._meta.db_table} WHERE fingerprint = ANY(%s)", [keys])
        return {row[0] for row in cursor.fetchall()}


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert the scan has just written, as its row reads (``AmlAlert``'s fields): a scan
    writes thousands, and building model instances for them cost more than the insert."""

    pk: int
    user_id: int
    rule_code: str
    rule_version: int
    band: str
    score: int
    weighted_score: Decimal
    value: Decimal | None
    transactions: list[str]
    trigger: str
    at: datetime
    source: str
    fingerprint: str
    created_at: datetime


def _store_many(*, kept: dict[int, list[Hit]], source: str) -> dict[int, list[AmlAlert | StoredAlert]]:
    """``_store`` for several traders at once: one query for the known fingerprints, one
    insert (helper: in the caller's transaction, holding the traders' locks)."""
    wanted: dict[str, tuple[int, Hit]] = {}
    for user_id, hits in kept.items():
        for hit in hits:
            wanted.setdefault(fingerprint(user_id=user_id, hit=hit), (user_id, hit))
    if not wanted:
        return {}
    known = _known_fingerprints(list(wanted))
    new = [(key, user_id, hit) for key, (user_id, hit) in wanted.items() if key not in known]
    if not new:
        return {}
    if connection.vendor != "postgresql":  # the embedded mode's SQLite: no arrays
        AmlAlert.objects.bulk_create(
            AmlAlert(
                fingerprint=key, user_id=user_id, rule_code=hit.rule_code, rule_version=hit.rule_version,
                band=hit.band, score=hit.score, weighted_score=hit.weighted, value=hit.value,
                transactions=list(hit.record_ids), trigger=hit.trigger_id, at=hit.at, source=source,
            )
            for key, user_id, hit in new
        )  # fmt: skip
        stored_rows = AmlAlert.objects.filter(fingerprint__in=[key for key, _, _ in new]).order_by("at", "id")
        grouped: dict[int, list[AmlAlert | StoredAlert]] = {}
        for alert in stored_rows:
            grouped.setdefault(alert.user_id, []).append(alert)
        return grouped
    # one statement over arrays, sent binary (no conflict can occur: the fingerprint names
    # the trader, whose lock is held)
    created = timezone.now()
    hits = [hit for _, _, hit in new]
    with selectors.binary_cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {AmlAlert._meta.db_table} (rule_code, rule_version, band, score, weighted_score, value,
                    transactions, trigger, at, source, fingerprint, created_at, user_id)
                SELECT r, v, b, s, w, val, tx::jsonb, trg, a, %s, f, %s, u
                  FROM unnest(%b::text[], %b::int[], %b::text[], %b::smallint[], %b::numeric[], %b::numeric[],
                              %b::text[], %b::text[], %b::timestamptz[], %b::text[], %b::bigint[])
                       AS x(r, v, b, s, w, val, tx, trg, a, f, u)
                RETURNING id, fingerprint""",
            [
                source,
                created,
                [hit.rule_code for hit in hits],
                [hit.rule_version for hit in hits],
                [hit.band for hit in hits],
                [hit.score for hit in hits],
                [hit.weighted for hit in hits],
                [hit.value for hit in hits],
                [json.dumps(list(hit.record_ids)) for hit in hits],
                [hit.trigger_id for hit in hits],
                [hit.at for hit in hits],
                [key for key, _, _ in new],
                [user_id for _, user_id, _ in new],
            ],
        )
        ids = {key: pk for pk, key in cursor.fetchall()}
    alerts = [
        StoredAlert(
            ids[key], user_id, hit.rule_code, hit.rule_version, hit.band, hit.score, hit.weighted, hit.value,
            list(hit.record_ids), hit.trigger_id, hit.at, source, key, created,
        )
        for key, user_id, hit in new
    ]  # fmt: skip
    stored: dict[int, list[AmlAlert | StoredAlert]] = {}
    for alert in sorted(alerts, key=lambda a: (a.at, a.pk)):
        stored.setdefault(alert.user_id, []).append(alert)
    return stored


def _store(*, user_id: int, hits: Iterable[Hit], source: str) -> list[AmlAlert]:
    """Insert the alerts that are new, in one statement (helper: runs in the caller's
    transaction, holding the trader's AML lock, so no other writer adds this trader's alerts
    meanwhile; a conflict on the fingerprint is still ignored)."""
    wanted = {}
    for hit in hits:
        wanted.setdefault(fingerprint(user_id=user_id, hit=hit), hit)
    if not wanted:
        return []
    known = _known_fingerprints(list(wanted))
    new = [
        AmlAlert(
            fingerprint=key,
            user_id=user_id,
            rule_code=hit.rule_code,
            rule_version=hit.rule_version,
            band=hit.band,
            score=hit.score,
            weighted_score=hit.weighted,
            value=hit.value,
            transactions=list(hit.record_ids),
            trigger=hit.trigger_id,
            at=hit.at,
            source=source,
        )
        for key, hit in wanted.items()
        if key not in known
    ]
    if not new:
        return []
    AmlAlert.objects.bulk_create(new, ignore_conflicts=True)
    return list(AmlAlert.objects.filter(fingerprint__in=[a.fingerprint for a in new]).order_by("at", "id"))


def _alert_hits(alerts: Iterable[AmlAlert]) -> list[Hit]:
    return [
        Hit(a.rule_code, a.rule_version, a.band, a.score, a.weighted_score, a.value, (), a.trigger, a.at)
        for a in alerts
    ]


_UNREAD = object()


def _consider_cases(outcomes: dict[int, Outcome]) -> None:
    """``_consider_case`` for several traders, with their open cases (locked) and their
    unassigned alerts of the score window read in one query each (helper: in the caller's
    transaction, holding the traders' locks)."""
    if not outcomes:
        return
    cases = {
        case.user_id: case
        for case in AmlCase.objects.select_for_update().filter(user_id__in=list(outcomes), status__in=OPEN_STATUSES)
    }
    window = timedelta(days=settings.AML_SCORE_WINDOW_DAYS)
    latest = {user_id: max(a.at for a in outcome.alerts) for user_id, outcome in outcomes.items()}
    without = [user_id for user_id in outcomes if user_id not in cases]
    # the scores first, from the few fields they need: most traders stay under the threshold,
    # and only those who reach it have their alerts read in full (by ``_consider_case``)
    scored: dict[int, list[Hit]] = {user_id: [] for user_id in without}
    if without:
        rows = AmlAlert.objects.filter(
            user_id__in=without,
            case__isnull=True,
            at__gte=min(latest[u] for u in without) - window,
            at__lte=max(latest[u] for u in without),
        ).values_list("user_id", "rule_code", "weighted_score", "at")
        for user_id, code, weighted, at in rows:
            if latest[user_id] - window <= at <= latest[user_id]:
                scored[user_id].append(Hit(code, 0, "", 0, weighted, None, (), "", at))
    for user_id, outcome in outcomes.items():
        if user_id in scored and total_score(scored[user_id]) < settings.AML_CASE_THRESHOLD:
            continue  # no open case, and the trader's alerts score under the threshold: nothing to do
        _consider_case(user_id=user_id, outcome=outcome, case=cases.get(user_id))


def _consider_case(*, user_id: int, outcome: Outcome, case=_UNREAD) -> None:
    """After new alerts (helper: in the caller's transaction, holding the trader's AML lock):
    an open case takes them and its score is recomputed; otherwise the trader's unassigned
    alerts of the score window are scored, and a case opens at the threshold. ``case``:
    already read (by ``_consider_cases``)."""
    if case is _UNREAD:
        case = AmlCase.objects.select_for_update().filter(user_id=user_id, status__in=OPEN_STATUSES).first()
    new_ids = [a.pk for a in outcome.alerts]
    if case is not None:
        AmlAlert.objects.filter(pk__in=new_ids).update(case=case)
        case.score = total_score(_alert_hits(case.alerts.all()))
        case.save(update_fields=["score", "updated_at"])
        audit_append(
            actor=None,
            action="aml.case_alerts_added",
            target=case,
            data={"user_id": user_id, "alerts": new_ids, "score": case.score, **_alert_summary(outcome.alerts)},
        )
        outcome.cases_updated.append(case)
        return
    latest = max(a.at for a in outcome.alerts)
    window = timedelta(days=settings.AML_SCORE_WINDOW_DAYS)
    candidates = list(selectors.alerts_unassigned(user_id=user_id, since=latest - window).filter(at__lte=latest))
    score = total_score(_alert_hits(candidates))
    if score < settings.AML_CASE_THRESHOLD:
        return
    case = AmlCase.objects.create(user_id=user_id, score=score, opened_at=timezone.now())
    AmlAlert.objects.filter(pk__in=[a.pk for a in candidates]).update(case=case)
    audit_append(
        actor=None,
        action="aml.case_opened",
        target=case,
        data={
            "user_id": user_id,
            "score": score,
            "threshold": settings.AML_CASE_THRESHOLD,
            "alerts": [a.pk for a in candidates],
            **_alert_summary(candidates),
        },
    )
    outcome.cases_opened.append(case)


def _alert_summary(alerts) -> dict:
    return {
        "rules": sorted({f"{a.rule_code} v{a.rule_version} {a.band}" for a in alerts}),
        "transactions": sorted({t for a in alerts for t in a.transactions}),
    }


# --- sign-ins ---------------------------------------------------------------------------------------


def signin_record(*, user, ip: str | None, user_agent: str = "", country: str = "") -> AmlSignIn:
    """Where a trader signed in from. The device is a digest of the user agent (the browser
    and its version, not the person); the country is a two-letter code or nothing."""
    device = hashlib.sha256(user_agent.encode()).hexdigest()[:32] if user_agent else ""
    country = (country or "").strip().upper()
    country = country if len(country) == 2 and country.isalpha() and country != "XX" else ""
    return AmlSignIn.objects.create(user=user, ip=ip or None, device=device, country=country)


# --- batch -------------------------------------------------------------------------------------------


def aml_scan(
    *, since: datetime, chunk: int = 500, source: str = "scan", progress: Callable[[int, int], None] | None = None
) -> Outcome:
    """Every live rule over every trader active since ``since``, at each of their records since
    then, as if each had been evaluated when it happened. Traders are found with one set-based
    query; the records at which a rule may raise are found set-based too
    (``selectors.scan_candidates``: each rule's windowed counts and sums in SQL), and only the
    traders with such records are loaded, ``chunk`` at a time (one query per source per
    chunk), and only those records judged, by those rules; velocity's sums come with its
    candidates (``measures.velocity_measure`` judges them), so a trader it alone may raise at
    is not loaded. Alerts are written one transaction per chunk. Alerts already raised (by the
    real-time path or an earlier scan) are not raised again; cases open as in real time."""
    started = time.perf_counter()
    outcome = Outcome()
    rules = selectors.live_rules()
    users = selectors.active_users_since(since=since)
    outcome.users = len(users)
    if not rules:
        return outcome
    reach = selectors.horizon(rules)
    windows = {rule.code: rule.window for rule in rules}
    prices = selectors.usd_prices()
    # velocity (the rule with the most candidates) is measured by the candidates' query itself
    velocity = {}
    candidates = selectors.scan_candidates(rules=rules, since=since, velocity=velocity, prices=prices)
    if candidates is not None:
        outcome.triggers = selectors.triggers_since(since=since, user_ids=users)
        for user_id, only in candidates.items():
            if only is None:  # every record of theirs is judged by every rule here
                velocity.pop(user_id, None)
    judged = users if candidates is None else [pk for pk in users if pk in candidates or pk in velocity]
    for offset in range(0, len(judged), chunk):
        batch = judged[offset : offset + chunk]
        loading = batch if candidates is None else [pk for pk in batch if pk in candidates]
        history = selectors.history_for(user_ids=loading, start=since - reach - timedelta(days=1), prices=prices)
        found_hits = {}
        if candidates is None:  # every trader's records loaded: count them here
            outcome.triggers += sum(1 for u in batch for r in history.records.get(u, ()) if r.at >= since)
        for user_id in batch:
            only = None if candidates is None else candidates.get(user_id, {})
            hits = scan_hits_for_user(
                rules=rules, history=history, user_id=user_id, since=since, only=only, velocity=velocity.get(user_id)
            )
            if hits:
                found_hits[user_id] = hits
        if found_hits:
            # one transaction per chunk: the traders' locks (in id order), their raised alerts
            # and the new ones in a statement each; cases per trader as in real time
            with transaction.atomic(durable=True):
                _lock_users(sorted(found_hits))
                raised = _raised_before_many(user_ids=list(found_hits), since=since - max(windows.values()))
                kept = {
                    user_id: suppress(hits, raised.get(user_id, []), windows) for user_id, hits in found_hits.items()
                }
                stored = _store_many(kept=kept, source=source)
                found = {user_id: Outcome(alerts=stored[user_id]) for user_id in found_hits if stored.get(user_id)}
                _consider_cases(found)
                for one in found.values():
                    outcome.alerts += one.alerts
                    outcome.cases_opened += one.cases_opened
                    outcome.cases_updated += one.cases_updated
        if progress is not None:
            progress(min(offset + chunk, len(judged)), len(judged))
    outcome.seconds = time.perf_counter() - started
    return outcome


def scan_hits_for_user(
    *,
    rules: list[Rule],
    history: selectors.History,
    user_id: int,
    since: datetime,
    only: Mapping[str, set[str]] | None,
    velocity: list[selectors.VelocityRow] | None = None,
) -> list[Hit]:
    """The scan's hits on one trader: ``hits_for_user`` at the candidate records ``only``, and
    velocity's hits from the rows its query measured (``selectors.scan_candidates``), in the
    order that judging each record in time order gives (by record, then the rules' order)."""
    hits = hits_for_user(rules=rules, history=history, user_id=user_id, since=since, only=only)
    if not velocity:
        return hits
    rule = next(rule for rule in rules if rule.code == VELOCITY)
    order = {rule.code: n for n, rule in enumerate(rules)}
    measured = _velocity_hits(rule=rule, user_id=user_id, rows=velocity)
    return sorted([*hits, *measured], key=lambda hit: (hit.at, hit.trigger_id, order[hit.rule_code]))


def _velocity_hits(*, rule: Rule, user_id: int, rows: list[selectors.VelocityRow]) -> list[Hit]:
    """Velocity's hits at the movements whose sums the scan's query worked out, scored by the
    pure core as ``velocity`` over loaded records would be."""
    hits = []
    for row in rows:
        kind = DEPOSIT if row.record_id.startswith("transfer:") else WITHDRAWAL
        trigger = Record(row.record_id, user_id, kind, row.at)
        measured = velocity_measure(
            rule,
            trigger=trigger,
            joined_at=row.joined_at,
            moved=row.moved,
            before=row.before,
            record_ids=row.record_ids,
        )
        hit = score_hit(rule, measured, trigger)
        if hit is not None and hit.score > 0:
            hits.append(hit)
    return hits


@dataclass
class Backtest:
    candidate: Rule
    live: Rule | None
    users: int
    candidate_hits: list[tuple[int, Hit]]
    live_hits: list[tuple[int, Hit]]

    def keys(self, hits) -> set[tuple[int, str]]:
        return {(user_id, hit.trigger_id) for user_id, hit in hits}


def aml_backtest(*, code: str, version: int, since: datetime | None = None) -> Backtest:
    """Replay history (since ``since``, else all of it) through one version of one rule and
    through the live version of the same rule: what each would have raised, with the same
    suppression as in production. Writes nothing."""
    code = code.upper()
    candidate = selectors.rule_version(code=code, version=version)
    if candidate is None:
        raise NotFound(f"No rule {code} version {version}.")
    live = next((rule for rule in selectors.live_rules() if rule.code == code), None)
    since = since or datetime(2000, 1, 1, tzinfo=timezone.get_current_timezone())
    users = selectors.active_users_since(since=since)
    reach = selectors.horizon([candidate] + ([live] if live else []))
    result = Backtest(candidate, live, len(users), [], [])
    for offset in range(0, len(users), 500):
        batch = users[offset : offset + 500]
        history = selectors.history_for(user_ids=batch, start=since - reach - timedelta(days=1))
        for user_id in batch:
            for rule, into in ((candidate, result.candidate_hits), (live, result.live_hits)):
                if rule is None:
                    continue
                hits = hits_for_user(rules=[rule], history=history, user_id=user_id, since=since)
                into.extend((user_id, hit) for hit in suppress(hits, [], {rule.code: rule.window}))
    return result


# --- case actions (staff) -------------------------------------------------------------------------------


def _case_for_update(case_id: int) -> AmlCase:
    case = AmlCase.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise NotFound("No such AML case.")
    return case


def _require_open(case: AmlCase) -> None:
    if not case.is_open:
        raise Conflict(f"This case is already {case.get_status_display().lower()}.", code="case_closed")


def _audit(case: AmlCase, *, actor, action: str, **data) -> None:
    audit_append(
        actor=actor,
        action=f"aml.case_{action}",
        target=case,
        data={"user_id": case.user_id, "status": case.status, "score": case.score, **data},
    )


def case_assign(*, case_id: int, actor: User, assignee: User | None = None) -> AmlCase:
    """Give the case to ``assignee`` (the actor when not given)."""
    assignee = assignee or actor
    with transaction.atomic():
        case = _case_for_update(case_id)
        _require_open(case)
        before = case.assignee_id
        case.assignee = assignee
        case.save(update_fields=["assignee", "updated_at"])
        _audit(case, actor=actor, action="assigned", assignee=assignee.email, previous_assignee_id=before)
    return case


def case_comment(*, case_id: int, actor: User, body: str) -> AmlCaseComment:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("A comment needs text.", fields={"body": ["Required."]})
    with transaction.atomic():
        case = _case_for_update(case_id)
        comment = AmlCaseComment.objects.create(case=case, author=actor, body=body)
        case.save(update_fields=["updated_at"])
        _audit(case, actor=actor, action="commented", comment_id=comment.pk, body=body)
    return comment


def _decide(*, case_id: int, actor: User, status: str, note: str) -> AmlCase:
    note = (note or "").strip()
    if not note:
        raise ValidationFailed("Say why (note).", fields={"note": ["Required."]})
    with transaction.atomic():
        case = _case_for_update(case_id)
        _require_open(case)
        if status == CaseStatus.ESCALATED and case.status == CaseStatus.ESCALATED:
            raise Conflict("This case is already escalated.", code="case_escalated")
        previous = case.status
        case.status = status
        case.decided_by = actor
        case.decision_note = note
        if status in (CaseStatus.CLEARED, CaseStatus.SAR_FILED):
            case.closed_at = timezone.now()
        case.save(update_fields=["status", "decided_by", "decision_note", "closed_at", "updated_at"])
        _audit(case, actor=actor, action=status, previous=previous, note=note)
    return case


def case_escalate(*, case_id: int, actor: User, note: str) -> AmlCase:
    """To a senior officer: still open, marked for a second look."""
    return _decide(case_id=case_id, actor=actor, status=CaseStatus.ESCALATED, note=note)


def case_clear(*, case_id: int, actor: User, note: str) -> AmlCase:
    """Nothing suspicious: the case closes; its alerts stay with it and no longer score."""
    return _decide(case_id=case_id, actor=actor, status=CaseStatus.CLEARED, note=note)


def case_file_sar(*, case_id: int, actor: User, note: str) -> AmlCase:
    """A suspicious activity report was filed with the authority: the case closes as such."""
    return _decide(case_id=case_id, actor=actor, status=CaseStatus.SAR_FILED, note=note)


def case_freeze_account(*, case_id: int, actor: User, note: str) -> AmlCase:
    """Halt the trader's trading (risk's user trading state ``halted``, open orders
    cancelled) for the case, in the same transaction and the audit trail."""
    note = (note or "").strip()
    if not note:
        raise ValidationFailed("Say why (note).", fields={"note": ["Required."]})
    with transaction.atomic():
        case = _case_for_update(case_id)
        _require_open(case)
        change = trading_state_set(
            scope=risk_core.USER,
            target=str(case.user_id),
            state=risk_core.HALTED,
            reason=f"AML case {case.pk}: {note}"[:200],
            actor=actor,
            cancel_open_orders=True,
        )
        case.account_frozen = True
        case.save(update_fields=["account_frozen", "updated_at"])
        _audit(case, actor=actor, action="account_frozen", note=note, previous_state=change["previous"])
    return case


# --- rule versions ----------------------------------------------------------------------------------


def aml_rules_install_defaults() -> int:
    """Store each shipped rule version that is not stored yet (live when its code has no live
    version). What the data migration does at install; returns how many were added."""
    from .models import AmlRuleVersion
    from .rules import DEFAULT_RULES

    added = 0
    with transaction.atomic():
        for rule in DEFAULT_RULES:
            if AmlRuleVersion.objects.filter(code=rule.code, version=rule.version).exists():
                continue
            AmlRuleVersion.objects.create(
                code=rule.code,
                version=rule.version,
                title=rule.title,
                definition=rule.as_data(),
                live=not AmlRuleVersion.objects.filter(code=rule.code, live=True).exists(),
                note="as shipped",
            )
            added += 1
    return added


def aml_rule_version_add(*, code: str, definition: dict, actor, note: str = ""):
    """Store a new version of a rule (not live yet: backtest it, then make it live). The
    version number is the next one for the code; the definition is checked by the pure core."""
    from .models import AmlRuleVersion
    from .rules import Rule

    code = (code or "").strip().upper()
    if code not in MEASURES:
        raise ValidationFailed(f"No rule {code!r}.", fields={"code": [f"One of {', '.join(sorted(MEASURES))}."]})
    with transaction.atomic():
        last = AmlRuleVersion.objects.select_for_update().filter(code=code).order_by("-version").first()
        version = (last.version if last else 0) + 1
        try:
            rule = Rule.from_data({**definition, "code": code, "version": version})
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise ValidationFailed(f"Not a rule definition: {error}", fields={"definition": [str(error)]}) from None
        row = AmlRuleVersion.objects.create(
            code=code, version=version, title=rule.title, definition=rule.as_data(), note=(note or "")[:300]
        )
        audit_append(actor=actor, action="aml.rule_version_added", target=row, data=rule.as_data())
    return row


def aml_rule_make_live(*, rule_version_id: int, actor):
    """This version is evaluated from now on, in place of the code's live one."""
    from .models import AmlRuleVersion

    with transaction.atomic():
        row = AmlRuleVersion.objects.select_for_update().filter(pk=rule_version_id).first()
        if row is None:
            raise NotFound("No such rule version.")
        previous = AmlRuleVersion.objects.select_for_update().filter(code=row.code, live=True).exclude(pk=row.pk)
        before = [v.version for v in previous]
        previous.update(live=False)
        row.live = True
        row.save(update_fields=["live"])
        audit_append(
            actor=actor,
            action="aml.rule_version_live",
            target=row,
            data={"code": row.code, "version": row.version, "previous": before},
        )
    return row
