"""What was used. The calendar lets metering count member-days in plain SQL on any database."""

from django.db import models


class Day(models.Model):
    """One UTC date, with the first day of its month (filled 2000-01-01 to 2100-12-31)."""

    day = models.DateField(primary_key=True)
    month = models.DateField(db_index=True)

    class Meta:
        ordering = ["day"]

    def __str__(self):
        return self.day.isoformat()
