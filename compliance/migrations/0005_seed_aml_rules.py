"""Version 1 of every shipped AML rule, live (compliance/rules/defaults.py). A rule already
stored at that version is left as it is."""

from django.db import migrations


def seed(apps, schema_editor):
    from compliance.rules.defaults import DEFAULT_RULES

    AmlRuleVersion = apps.get_model("compliance", "AmlRuleVersion")
    for rule in DEFAULT_RULES:
        if AmlRuleVersion.objects.filter(code=rule.code, version=rule.version).exists():
            continue
        has_live = AmlRuleVersion.objects.filter(code=rule.code, live=True).exists()
        AmlRuleVersion.objects.create(
            code=rule.code,
            version=rule.version,
            title=rule.title,
            definition=rule.as_data(),
            live=not has_live,
            note="as shipped",
        )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_aml_monitoring")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
