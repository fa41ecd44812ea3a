"""The back office's records: one settlement per outbox event (keyed by the event's key, so a
duplicate delivery is a no-op), its four steps' state, and the history of every error.

A settlement moves through steps 1..4; ``step`` is the next step to run (5 once settled).
Whoever runs a step first *claims* the row (``claimed_until``): a redelivered message or a
recovery sweep finds it claimed and leaves it alone, and a crashed worker's claim simply
expires.
"""

from django.db import models

from trading.fields import ExactDecimalField, amount_field


class Kind(models.TextChoices):
    OPEN = "open", "Opening buy"
    CLOSE = "close", "Close"
    EXERCISE = "exercise", "Exercise"


class State(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SETTLED = "settled", "Settled"
    MANUAL_REVIEW = "manual_review", "Manual review"
    RESOLVED = "resolved", "Resolved by staff"


FINAL_STATES = (State.SETTLED, State.RESOLVED)
ACTIVE_STATES = (State.PENDING, State.RUNNING)

STEP_NAMES = {
    1: "system accounts",
    2: "funding transfer",
    3: "venue swap",
    4: "return to system wallet",
}
DONE = 5


class Settlement(models.Model):
    ref = models.CharField(max_length=120, unique=True, help_text="The outbox event key, e.g. option_order:42.")
    event_id = models.BigIntegerField(help_text="The outbox event that carried it.")
    topic = models.CharField(max_length=60)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    underlying = models.CharField(max_length=8)
    usdt = amount_field(help_text="USDT the platform received (open) or paid (close, exercise).")
    underlying_qty = amount_field(help_text="The underlying worth of it at the index at order time.")
    index_price = amount_field()
    payload = models.JSONField(default=dict)

    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    step = models.PositiveSmallIntegerField(default=1, help_text="The next step to run; 5 when done.")
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts of the current step.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=40, blank=True, default="")
    last_error_code = models.CharField(max_length=40, blank=True, default="")
    last_error = models.TextField(blank=True, default="")

    # Step 3's outcome on the venue.
    client_order_id = models.CharField(max_length=40, blank=True, default="")
    venue = models.CharField(max_length=40, blank=True, default="")
    venue_order_id = models.CharField(max_length=80, blank=True, default="")
    venue_sent_at = models.DateTimeField(null=True, blank=True)
    filled_qty = amount_field(null=True, blank=True)
    fill_cost = amount_field(null=True, blank=True)
    fill_price = amount_field(null=True, blank=True)
    venue_fee = amount_field(null=True, blank=True)
    slippage_bps = ExactDecimalField(max_digits=12, decimal_places=4, null=True, blank=True)

    event_created_at = models.DateTimeField(help_text="When the business transaction wrote the event.")
    # Where the time between the order's commit and its acceptance went (empty for events
    # that came another way, e.g. the reconciliation): the relay read the event, the relay
    # handed its batch to the broker, the intake started on it.
    relay_seen_at = models.DateTimeField(null=True, blank=True)
    relay_sent_at = models.DateTimeField(null=True, blank=True)
    intake_started_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=254, blank=True, default="")
    resolution_note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ("-id",)
        indexes = [models.Index(fields=["state", "updated_at"], name="settlement_state_updated")]

    def __str__(self) -> str:
        return f"{self.ref} ({self.state}, step {min(self.step, 4)})"

    @property
    def current_step_name(self) -> str:
        return STEP_NAMES.get(self.step, "done")

    @property
    def buys_underlying(self) -> bool:
        """An opening buy leaves the platform short the underlying: it buys it back with the
        USDT premium. A close or an exercise is the mirror image: it sells."""
        return self.kind == Kind.OPEN

    @property
    def has_swap(self) -> bool:
        """A close at a zero bid moved no money: there is nothing to swap."""
        return bool(self.usdt if self.buys_underlying else self.underlying_qty)


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"


class SettlementStep(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="steps")
    step = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.RUNNING)
    attempts = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("settlement", "step")
        constraints = [models.UniqueConstraint(fields=["settlement", "step"], name="settlement_one_row_per_step")]

    def __str__(self) -> str:
        return f"{self.settlement_id} step {self.step}: {self.status}"


class SettlementError(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="errors")
    step = models.PositiveSmallIntegerField()
    attempt = models.PositiveIntegerField()
    code = models.CharField(max_length=40)
    message = models.TextField(blank=True, default="")
    transient = models.BooleanField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("settlement", "at")

    def __str__(self) -> str:
        return f"{self.settlement_id} step {self.step} attempt {self.attempt}: {self.code}"


class Counter(models.Model):
    """Monotonic operational counters (re-published events, retries) for /metrics."""

    name = models.CharField(max_length=80, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
