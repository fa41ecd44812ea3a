"""The one column type for amounts, prices and quantities: exact in both databases.

PostgreSQL keeps it as ``numeric(max_digits, decimal_places)``, exact already. SQLite (the
embedded mode) has no exact decimal type: its ``decimal`` columns hold binary floats, so sums
drift (``0.1 + 0.2`` of an asset is ``0.30000000000000004``) and a released hold can leave
``-1e-15`` behind. There the column holds a 64-bit integer count of ``10**-decimal_places``
units instead, so every stored value equals its Decimal exactly and every sum, difference and
comparison the database does is integer arithmetic. A CHECK keeps it that way: a value that
overflowed into a float (SQLite's answer to integer overflow) is refused, never stored.

Only same-scale additions and subtractions of these columns are meaningful in SQL (they are
what the ledger does); mixing one with a plain number or a differently scaled column in an
expression raises ``FieldError`` instead of silently adding units of different sizes.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from django import forms
from django.core import checks, exceptions
from django.db import DataError, models
from django.db.models.expressions import Combinable, register_combinable_fields

from trading.money import LEDGER_DECIMAL_PLACES, MAX_DIGITS

_INT64 = 2**63 - 1


class ExactDecimalField(models.Field):
    description = "Exact decimal (numeric on PostgreSQL, scaled integer on SQLite)"
    empty_strings_allowed = False
    default_error_messages = {"invalid": "“%(value)s” value must be a decimal number."}

    def __init__(self, *args, max_digits: int = MAX_DIGITS, decimal_places: int = LEDGER_DECIMAL_PLACES, **kwargs):
        self.max_digits, self.decimal_places = max_digits, decimal_places
        self._unit = Decimal(1).scaleb(-decimal_places)
        super().__init__(*args, **kwargs)

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if not 0 <= self.decimal_places <= self.max_digits:
            errors.append(checks.Error("decimal_places must be between 0 and max_digits.", obj=self, id="trading.E001"))
        return errors

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_digits"], kwargs["decimal_places"] = self.max_digits, self.decimal_places
        return name, path, args, kwargs

    def get_internal_type(self):
        return "ExactDecimalField"

    # --- the column ---------------------------------------------------------------------------

    def db_type(self, connection):
        if connection.vendor == "sqlite":
            return "integer"
        # The same text as Django's DecimalField, so replacing one by the other alters nothing.
        return f"numeric({self.max_digits}, {self.decimal_places})"

    def cast_db_type(self, connection):
        return self.db_type(connection)

    def db_check(self, connection):
        if connection.vendor == "sqlite":
            column = connection.ops.quote_name(self.column)
            return f"typeof({column}) IN ('integer', 'null')"
        return None

    # --- values -------------------------------------------------------------------------------

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float):
            raise exceptions.ValidationError("Floats are not exact; pass a Decimal or a string.", code="invalid")
        try:
            return Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise exceptions.ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if isinstance(value, Combinable):
            return value
        return self.to_python(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if not prepared:
            value = self.get_prep_value(value)
        if value is None or connection.vendor != "sqlite" or not isinstance(value, Decimal):
            return value
        return self.to_units(value)

    def to_units(self, value: Decimal) -> int:
        """``value`` as the SQLite column's integer, rounded like PostgreSQL rounds to the
        column's scale (half away from zero)."""
        if not value.is_finite():
            raise DataError(f"{value} is not a finite number")
        with localcontext(prec=self.max_digits + 30):
            units = int(value.quantize(self._unit, rounding=ROUND_HALF_UP).scaleb(self.decimal_places))
        if abs(units) > _INT64 or value.adjusted() >= self.max_digits - self.decimal_places:
            raise DataError(f"{value} is out of range for the column {self.name}")
        return units

    def from_units(self, units) -> Decimal:
        if isinstance(units, (float, str)):
            # Never written by this field: only rows from before it, or hand-made SQL.
            raise DataError(f"column {self.name} holds {units!r}, not an integer count of units")
        return Decimal(units).scaleb(-self.decimal_places)

    def get_db_converters(self, connection):
        converters = super().get_db_converters(connection)
        if connection.vendor == "sqlite":
            converters = [self._from_sqlite, *converters]
        return converters

    def _from_sqlite(self, value, expression, connection):
        return None if value is None else self.from_units(value)

    def from_db(self, value, connection):
        """A value plain SQL read from this column (the ORM converts its own reads)."""
        if value is None or connection.vendor != "sqlite":
            return value
        return self.from_units(value)

    def formfield(self, **kwargs):
        return super().formfield(
            **{
                "form_class": forms.DecimalField,
                "max_digits": self.max_digits,
                "decimal_places": self.decimal_places,
                **kwargs,
            }
        )


# Sums and differences of two such columns stay in the column's units (the ledger's balance
# check adds two counters). Nothing else is registered, so a plain number or a product in an
# expression is an error rather than a silent mix of units.
for _connector in (Combinable.ADD, Combinable.SUB):
    register_combinable_fields(ExactDecimalField, _connector, ExactDecimalField, ExactDecimalField)


def amount_field(**kwargs) -> ExactDecimalField:
    """An amount, price or quantity column at the ledger's scale."""
    return ExactDecimalField(max_digits=MAX_DIGITS, decimal_places=LEDGER_DECIMAL_PLACES, **kwargs)


def sqlite_units_conversion(app_label: str):
    """A migration step for an embedded (SQLite) database made before the app's decimal
    columns became ``ExactDecimalField``: rewrites every value of the app's old decimal
    columns as the integer count of units the new columns hold (and back, when unapplied).
    It must run before the ``AlterField`` steps, whose copy into the new tables the CHECK
    would refuse otherwise. A no-op on PostgreSQL, where the column type does not change."""
    from django.db import migrations

    def convert(apps, schema_editor, forward: bool):
        connection = schema_editor.connection
        if connection.vendor != "sqlite":
            return
        for model in apps.get_app_config(app_label).get_models():
            # The models as they were before this migration, in both directions: their
            # decimal columns are the ones that change representation.
            columns = [
                (f.column, f.decimal_places) for f in model._meta.local_fields if isinstance(f, models.DecimalField)
            ]
            if not columns:
                continue
            table, pk = model._meta.db_table, model._meta.pk.column
            names = ", ".join(connection.ops.quote_name(column) for column, _ in columns)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {connection.ops.quote_name(pk)}, {names} FROM {connection.ops.quote_name(table)}"
                )
                rows = cursor.fetchall()
                updates = []
                for pk_value, *values in rows:
                    converted = []
                    for value, (_, places) in zip(values, columns):
                        if value is None:
                            converted.append(None)
                        elif forward:  # a float or text of the old column: its shortest decimal form
                            converted.append(
                                int(
                                    Decimal(repr(value) if isinstance(value, float) else str(value))
                                    .quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
                                    .scaleb(places)
                                )
                            )
                        else:
                            converted.append(str(Decimal(value).scaleb(-places)))
                    updates.append((*converted, pk_value))
                sets = ", ".join(f"{connection.ops.quote_name(column)} = %s" for column, _ in columns)
                cursor.executemany(
                    f"UPDATE {connection.ops.quote_name(table)} SET {sets} WHERE {connection.ops.quote_name(pk)} = %s",
                    updates,
                )

    return migrations.RunPython(lambda apps, se: convert(apps, se, True), lambda apps, se: convert(apps, se, False))
