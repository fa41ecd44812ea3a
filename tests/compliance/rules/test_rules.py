"""Each shipped rule at the lower edge of its first band (raises) and just below it (does not),
on plain records: the pure core, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from compliance.rules import (
    DEFAULT_RULES,
    DEPOSIT,
    INSUFFICIENT_HISTORY,
    MEASURES,
    SIGN_IN,
    TRADE,
    WITHDRAWAL,
    Band,
    Context,
    Raised,
    Record,
    Rule,
    Totals,
    evaluate,
    measures,
    suppress,
    total_score,
)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RULES = {rule.code: rule for rule in DEFAULT_RULES}
USER = 1


def rec(n, kind, at, usd="0", user=USER, **kw):
    return Record(id=f"{kind}:{n}", user_id=user, kind=kind, at=at, usd=D(usd), **kw)


def hits_of(code, records, trigger=None, **context):
    records = sorted(records, key=lambda r: r.at)
    trigger = trigger or records[-1]
    ctx = Context(user_id=USER, records=records, trigger=trigger, **context)
    return evaluate([RULES[code]], ctx, MEASURES)


def only(hits):
    assert len(hits) == 1, hits
    return hits[0]


# --- structuring -----------------------------------------------------------------------------------


def _near_threshold(count, usd="9500"):
    return [rec(i, DEPOSIT, T0 + timedelta(hours=i), usd) for i in range(count)]


def test_structuring_three_near_threshold_movements_raise():
    hit = only(hits_of("STRUCTURING", _near_threshold(3)))
    assert (hit.band, hit.score, hit.value) == ("several", 40, 3)
    assert hit.record_ids == ("deposit:0", "deposit:1", "deposit:2")


def test_structuring_two_do_not():
    assert hits_of("STRUCTURING", _near_threshold(2)) == []


def test_structuring_counts_only_amounts_in_the_margin_under_the_threshold():
    # 9,000 is the margin's floor (inside), 8,999.99 below it, 10,000 at the threshold (outside)
    inside = [rec(0, DEPOSIT, T0, "9000"), rec(1, WITHDRAWAL, T0 + timedelta(hours=1), "9999.99")]
    assert only(hits_of("STRUCTURING", [*inside, rec(2, DEPOSIT, T0 + timedelta(hours=2), "9000")])).value == 3
    assert hits_of("STRUCTURING", [*inside, rec(2, DEPOSIT, T0 + timedelta(hours=2), "8999.99")]) == []
    assert hits_of("STRUCTURING", [*inside, rec(2, DEPOSIT, T0 + timedelta(hours=2), "10000")]) == []


def test_structuring_five_is_the_higher_band_and_the_window_bounds_the_count():
    assert only(hits_of("STRUCTURING", _near_threshold(5))).band == "many"
    spread = [rec(i, DEPOSIT, T0 + timedelta(days=2, hours=1) * i, "9500") for i in range(3)]
    assert hits_of("STRUCTURING", spread) == []  # the first one is out of the 3-day window


# --- rapid in and out ------------------------------------------------------------------------------


def test_rapid_in_out_half_withdrawn_raises_just_under_half_does_not():
    deposit = rec(0, DEPOSIT, T0, "10000")
    at = T0 + timedelta(hours=3)
    hit = only(hits_of("RAPID_IN_OUT", [deposit, rec(1, WITHDRAWAL, at, "5000")]))
    assert (hit.band, hit.score, hit.value) == ("most", 30, D("0.5"))
    assert hits_of("RAPID_IN_OUT", [deposit, rec(1, WITHDRAWAL, at, "4999.99")]) == []


def test_rapid_in_out_trading_in_between_clears_it():
    deposit = rec(0, DEPOSIT, T0, "10000")
    out = rec(2, WITHDRAWAL, T0 + timedelta(hours=3), "10000")
    assert only(hits_of("RAPID_IN_OUT", [deposit, rec(1, TRADE, T0 + timedelta(hours=1), "2499"), out])).band == "all"
    assert hits_of("RAPID_IN_OUT", [deposit, rec(1, TRADE, T0 + timedelta(hours=1), "2500"), out]) == []


def test_rapid_in_out_only_within_the_window():
    deposit = rec(0, DEPOSIT, T0, "10000")
    assert hits_of("RAPID_IN_OUT", [deposit, rec(1, WITHDRAWAL, T0 + timedelta(hours=24, seconds=1), "10000")]) == []


# --- velocity -------------------------------------------------------------------------------------


def _history(daily_usd="1000", days=90):
    # one deposit a day over the lookback: the baseline is daily_usd per day
    return [rec(i, DEPOSIT, T0 - timedelta(days=days - i), daily_usd) for i in range(days)]


def test_velocity_five_times_the_usual_day_raises_just_under_does_not():
    joined = T0 - timedelta(days=120)
    history = _history()
    at = T0 + timedelta(hours=1)
    hit = only(hits_of("VELOCITY", [*history, rec(900, WITHDRAWAL, at, "5000")], joined_at=joined))
    assert (hit.band, hit.score, hit.value) == ("5x", 30, D("5.00"))
    assert hits_of("VELOCITY", [*history, rec(900, WITHDRAWAL, at, "4999")], joined_at=joined) == []


def test_velocity_on_a_young_account_is_insufficient_history_and_raises_nothing_by_default():
    joined = T0 - timedelta(days=29)
    records = [rec(0, DEPOSIT, T0, "100000")]
    assert hits_of("VELOCITY", records, joined_at=joined) == []
    scored = replace(RULES["VELOCITY"], insufficient_score=10)
    ctx = Context(user_id=USER, records=records, trigger=records[0], joined_at=joined)
    [hit] = evaluate([scored], ctx, MEASURES)
    assert (hit.band, hit.score, hit.value) == (INSUFFICIENT_HISTORY, 10, None)


# --- large first deposit ----------------------------------------------------------------------------


def test_large_first_deposit_at_the_edge_raises_just_under_does_not():
    joined = T0 - timedelta(days=2)
    hit = only(hits_of("LARGE_FIRST_DEPOSIT", [rec(0, DEPOSIT, T0, "10000")], joined_at=joined))
    assert (hit.band, hit.score) == ("large", 40)
    assert hits_of("LARGE_FIRST_DEPOSIT", [rec(0, DEPOSIT, T0, "9999.99")], joined_at=joined) == []


def test_large_first_deposit_only_the_first_and_only_while_the_account_is_new():
    joined = T0 - timedelta(days=2)
    second = [rec(0, DEPOSIT, T0, "10"), rec(1, DEPOSIT, T0 + timedelta(hours=1), "90000")]
    assert hits_of("LARGE_FIRST_DEPOSIT", second, joined_at=joined) == []
    old = T0 - timedelta(days=31)
    assert hits_of("LARGE_FIRST_DEPOSIT", [rec(0, DEPOSIT, T0, "90000")], joined_at=old) == []


# --- dormant account reactivated ----------------------------------------------------------------------


def test_dormant_reactivated_after_the_window_raises_just_inside_it_does_not():
    last = rec(0, DEPOSIT, T0, "50")
    login = rec(1, SIGN_IN, T0 + timedelta(days=179), ip="10.0.0.1")  # sign-ins do not break dormancy
    hit = only(hits_of("DORMANT_REACTIVATED", [last, login, rec(2, WITHDRAWAL, T0 + timedelta(days=180), "5000")]))
    assert (hit.band, hit.score, hit.record_ids) == ("large", 40, ("deposit:0", "withdrawal:2"))
    early = T0 + timedelta(days=180) - timedelta(seconds=1)
    assert hits_of("DORMANT_REACTIVATED", [last, rec(2, WITHDRAWAL, early, "5000")]) == []
    assert hits_of("DORMANT_REACTIVATED", [last, rec(2, WITHDRAWAL, T0 + timedelta(days=200), "4999.99")]) == []


# --- many small inflows then consolidation -----------------------------------------------------------


def _small_inflows(count):
    return [rec(i, DEPOSIT, T0 + timedelta(hours=i), "500") for i in range(count)]


def test_fan_in_ten_small_deposits_then_consolidation_raises_nine_do_not():
    out = rec(99, WITHDRAWAL, T0 + timedelta(days=1), "4000")  # 80% of ten deposits of 500
    hit = only(hits_of("FAN_IN_CONSOLIDATION", [*_small_inflows(10), out]))
    assert (hit.band, hit.score, hit.value) == ("many", 40, 10)
    assert "withdrawal:99" in hit.record_ids
    fewer = [*_small_inflows(9), rec(99, WITHDRAWAL, T0 + timedelta(days=1), "4000")]
    assert hits_of("FAN_IN_CONSOLIDATION", fewer) == []


def test_fan_in_needs_most_of_the_inflows_to_leave():
    out = rec(99, WITHDRAWAL, T0 + timedelta(days=1), "3999.99")
    assert hits_of("FAN_IN_CONSOLIDATION", [*_small_inflows(10), out]) == []


# --- one IP or device across accounts -------------------------------------------------------------------


def _others(count, **where):
    return [rec(100 + i, SIGN_IN, T0 - timedelta(days=1), user=10 + i, **where) for i in range(count)]


def test_shared_ip_two_other_accounts_raise_one_does_not():
    login = rec(0, SIGN_IN, T0, ip="203.0.113.7", device="d1")
    hit = only(hits_of("SHARED_IP_DEVICE", [login], others=_others(2, ip="203.0.113.7")))
    assert (hit.band, hit.score, hit.value) == ("few", 30, 2)
    assert hits_of("SHARED_IP_DEVICE", [login], others=_others(1, ip="203.0.113.7")) == []


def test_shared_device_counts_too_and_old_sign_ins_do_not():
    login = rec(0, SIGN_IN, T0, ip="203.0.113.7", device="d1")
    assert only(hits_of("SHARED_IP_DEVICE", [login], others=_others(2, ip="198.51.100.1", device="d1"))).value == 2
    stale = [rec(100 + i, SIGN_IN, T0 - timedelta(days=31), user=10 + i, ip="203.0.113.7") for i in range(3)]
    assert hits_of("SHARED_IP_DEVICE", [login], others=stale) == []


# --- high-risk jurisdiction --------------------------------------------------------------------------------


def test_high_risk_jurisdiction_by_sign_in_country_or_kyc_country():
    listed = {"high_risk_countries": ["KP", "IR"]}
    hit = only(hits_of("HIGH_RISK_JURISDICTION", [rec(0, SIGN_IN, T0, country="ir")], **listed))
    assert (hit.band, hit.score, hit.value) == ("seen", 30, 1)
    assert hits_of("HIGH_RISK_JURISDICTION", [rec(0, SIGN_IN, T0, country="FR")], **listed) == []
    by_kyc = only(hits_of("HIGH_RISK_JURISDICTION", [rec(0, DEPOSIT, T0, "10")], kyc_country="KP", **listed))
    assert by_kyc.record_ids == ("deposit:0",)
    assert hits_of("HIGH_RISK_JURISDICTION", [rec(0, DEPOSIT, T0, "10")], kyc_country="FR", **listed) == []


# --- the engine --------------------------------------------------------------------------------------------


def test_bands_are_inclusive_at_their_lower_edge():
    rule = Rule("X", 1, "", timedelta(days=1), D(1), (Band("a", D(1), 10), Band("b", D(2), 20)))
    assert rule.band_for(D("0.99")) is None
    assert rule.band_for(D(1)).label == "a"
    assert rule.band_for(D("1.99")).label == "a"
    assert rule.band_for(D(2)).label == "b"


def test_rules_round_trip_as_data():
    for rule in DEFAULT_RULES:
        assert Rule.from_data(rule.as_data()) == rule


def test_later_records_are_not_seen_from_an_earlier_trigger():
    records = _near_threshold(3)
    assert hits_of("STRUCTURING", records, trigger=records[1]) == []


def test_total_score_takes_each_rules_strongest_weighted_hit():
    many = only(hits_of("STRUCTURING", _near_threshold(5)))
    several = only(hits_of("STRUCTURING", _near_threshold(3)))
    login = rec(0, SIGN_IN, T0, ip="203.0.113.7")
    shared = only(hits_of("SHARED_IP_DEVICE", [login], others=_others(2, ip="203.0.113.7")))
    assert total_score([several, many, shared]) == D(70 + 30)


def test_suppression_keeps_a_worse_band_and_drops_a_repeat_within_the_window():
    several = only(hits_of("STRUCTURING", _near_threshold(3)))
    many = only(hits_of("STRUCTURING", _near_threshold(5)))
    windows = {"STRUCTURING": RULES["STRUCTURING"].window}
    earlier = Raised("STRUCTURING", 40, T0)
    assert suppress([several], [earlier], windows) == []
    assert suppress([many], [earlier], windows) == [many]
    long_ago = Raised("STRUCTURING", 40, T0 - timedelta(days=4))
    assert suppress([several], [long_ago], windows) == [several]


# --- one trigger read narrowly: totals in place of the far records ---------------------------------


def _narrow(code, records, trigger, **context):
    """The same evaluation with only the records ``measures.reach`` asks for and the rest as
    ``Totals`` worked out from the whole list (what the database answers in real time)."""
    rule = RULES[code]
    records = sorted(records, key=lambda r: r.at)
    whole = Context(user_id=USER, records=records, trigger=trigger, **context)
    near = measures.reach([rule], trigger, kyc_country=context.get("kyc_country", ""))
    sums = {key: whole.usd_between(*key) for key in measures.sums_needed([rule], trigger)}
    totals = Totals(sums=sums, last_activity=whole.last_activity(), other_deposit=whole.has_other_deposit())
    kept = [r for r in records if r.at >= trigger.at - near]
    ctx = Context(user_id=USER, records=kept, trigger=trigger, totals=totals, **context)
    return evaluate([rule], ctx, MEASURES)


def test_velocity_from_totals_at_the_edge_and_just_under():
    joined = T0 - timedelta(days=120)
    at = T0 + timedelta(hours=1)
    for usd, expected in (("5000", [("5x", 30, D("5.00"))]), ("4999", [])):
        records = [*_history(), rec(900, WITHDRAWAL, at, usd)]
        hits = _narrow("VELOCITY", records, records[-1], joined_at=joined)
        assert [(h.band, h.score, h.value) for h in hits] == expected
        assert hits == hits_of("VELOCITY", records, joined_at=joined)
    assert measures.reach([RULES["VELOCITY"]], records[-1]) == timedelta(days=1)  # a day, not the lookback


def test_dormant_from_totals_at_the_edge_and_just_inside_the_window():
    last = rec(0, DEPOSIT, T0, "50")
    for at, usd, expected in (
        (T0 + timedelta(days=180), "5000", [("large", 40)]),
        (T0 + timedelta(days=180) - timedelta(seconds=1), "5000", []),
        (T0 + timedelta(days=200), "4999.99", []),
    ):
        records = [last, rec(1, SIGN_IN, T0 + timedelta(days=179), ip="10.0.0.1"), rec(2, WITHDRAWAL, at, usd)]
        hits = _narrow("DORMANT_REACTIVATED", records, records[-1])
        assert [(h.band, h.score) for h in hits] == expected
        assert hits == hits_of("DORMANT_REACTIVATED", records)
    assert measures.reach([RULES["DORMANT_REACTIVATED"]], records[-1]) == timedelta(0)


def test_large_first_deposit_from_totals_at_the_edge_and_not_the_second():
    joined = T0 - timedelta(days=2)
    for records, expected in (
        ([rec(0, DEPOSIT, T0, "10000")], [("large", 40)]),
        ([rec(0, DEPOSIT, T0, "9999.99")], []),
        ([rec(0, DEPOSIT, T0 - timedelta(days=1), "10"), rec(1, DEPOSIT, T0, "90000")], []),
    ):
        hits = _narrow("LARGE_FIRST_DEPOSIT", records, records[-1], joined_at=joined)
        assert [(h.band, h.score) for h in hits] == expected


def test_reach_is_the_window_of_the_rules_that_read_records_for_this_trigger():
    rules = list(DEFAULT_RULES)
    withdrawal = rec(0, WITHDRAWAL, T0, "100")
    assert measures.reach(rules, withdrawal) == timedelta(days=7)  # fan-in's week
    assert measures.reach(rules, withdrawal, kyc_country="KP", high_risk_countries=["KP"]) == timedelta(days=30)
    assert measures.reach(rules, rec(1, SIGN_IN, T0)) == timedelta(0)
    unknown = Rule(code="NEW_RULE", version=1, title="", window=timedelta(days=1), weight=D(1), bands=())
    assert measures.reach([*rules, unknown], withdrawal) is None
