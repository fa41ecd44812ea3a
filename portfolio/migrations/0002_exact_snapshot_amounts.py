from django.db import migrations

import trading.fields
from trading.fields import sqlite_units_conversion


class Migration(migrations.Migration):
    dependencies = [
        ("portfolio", "0001_initial"),
    ]

    operations = [
        sqlite_units_conversion("portfolio"),
        migrations.AlterField(
            model_name="dailysnapshot",
            name="net_flows_usdt",
            field=trading.fields.ExactDecimalField(decimal_places=8, max_digits=38),
        ),
        migrations.AlterField(
            model_name="dailysnapshot",
            name="value_usdt",
            field=trading.fields.ExactDecimalField(decimal_places=8, max_digits=38),
        ),
    ]
