"""An index on ledger_entry (district, category, at_ms), for reports by service category.

`ledger.reports.category_report` sums a chain's minutes per category and kind over periods
(months); each period is one range of `at_ms`, so a report for one category reads only its
own rows in that range, in index order. Entries without a category are indexed too (NULL):
the report lists them as uncategorised.
"""

from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_read_write_functions")]

    operations = [
        ops.AddIndex(
            model_name="LedgerEntry",
            index=Index(fields=["district", "category", "at_ms"]),
        ),
    ]
