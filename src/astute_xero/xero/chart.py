"""What a Xero organisation accepts (its chart): read from Xero (five GETs, which do not depend on each other
and so may go at once: `CHART_READS`, `XeroClient.read_chart_part`, `chart_from_reads`), checked against by validation.

Kept apart from validation (which needs pandas and Great Expectations) so that the Xero client, and every
task that only calls Xero, imports neither.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TRACKING_INCOMPLETE = "\x00"  # a line with a tracking category but no option, or an option but no category


@dataclass(frozen=True)
class XeroChart:
    """What one Xero organisation accepts: read once per run from Accounts, TaxRates, Currencies,
    TrackingCategories and Organisation (its lock dates)."""

    tenant_id: str
    organisation_name: str
    account_codes: frozenset[str]
    tax_types: frozenset[str]
    currencies: frozenset[str]
    # Active tracking categories and their active options, as Xero spells them (GET /TrackingCategories).
    tracking: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Its lock dates (GET /Organisation; None: not set). Xero refuses a posted document dated on or before
    # either: the end of year lock date binds everyone, the period lock date everyone but advisers, and an
    # app is never an adviser.
    period_lock_date: dt.date | None = None
    end_of_year_lock_date: dt.date | None = None

    @property
    def lock_date(self) -> dt.date | None:
        """The last date Xero refuses to post on for us: the later of the two lock dates."""
        return max((d for d in (self.period_lock_date, self.end_of_year_lock_date) if d is not None), default=None)

    @property
    def lock_date_name(self) -> str:
        """Which lock date `lock_date` is, as Xero's settings name it."""
        names = [name for name, day in (("period lock date", self.period_lock_date),
                                        ("end of year lock date", self.end_of_year_lock_date))
                 if day is not None and day == self.lock_date]
        return " and ".join(names)

    @property
    def tracking_keys(self) -> list[str]:
        """Every (category, option) pair a line may carry, as tracking_key spells it."""
        return sorted(tracking_key(c, o) for c, options in self.tracking.items() for o in options)

    def tracking_problem(self, category: str, option: str) -> str:
        """Why a line's tracking is not one of the organisation's, in a finance person's words."""
        categories = {c.casefold(): c for c in self.tracking}
        known = categories.get(category.strip().casefold())
        if known is None:
            return (f"tracking category '{category}' does not exist in '{self.organisation_name}' (or is archived); "
                    f"its active tracking categories are: {', '.join(sorted(self.tracking)) or 'none'}")
        return (f"tracking category '{known}' has no active option '{option}' in '{self.organisation_name}'; "
                f"its options are: {', '.join(sorted(self.tracking[known])) or 'none'}")


def tracking_key(category: str | None, option: str | None) -> str | None:
    """A line's tracking as one comparable value: Xero matches names ignoring case and surrounding spaces."""
    if not category and not option:
        return None
    if not category or not option:
        return TRACKING_INCOMPLETE
    return f"{category.strip().casefold()}\x1f{option.strip().casefold()}"


# The chart's reads: Xero's endpoint, and the SDK's AccountingApi method that reads it.
CHART_READS = {
    "Accounts": "get_accounts",
    "TaxRates": "get_tax_rates",
    "Currencies": "get_currencies",
    "TrackingCategories": "get_tracking_categories",
    "Organisation": "get_organisations",
}


def chart_from_reads(tenant_id: str, organisation_name: str, reads: Mapping[str, Any]) -> XeroChart:
    """The chart from the SDK's answers to the five reads (by endpoint of CHART_READS)."""
    from astute_xero.xero.client import enum_value as _enum  # the client imports this module
    # Its lock dates, shown only when set (the SDK reads them as dates from /Date(ms+0000)/).
    organisation = (reads["Organisation"].organisations or [None])[0]
    return XeroChart(
        tenant_id=tenant_id,
        organisation_name=organisation_name,
        account_codes=frozenset(
            a.code for a in reads["Accounts"].accounts or [] if a.code and _enum(a.status) == "ACTIVE"
        ),
        tax_types=frozenset(
            t.tax_type for t in reads["TaxRates"].tax_rates or [] if t.tax_type and _enum(t.status) != "DELETED"
        ),
        currencies=frozenset(_enum(c.code) for c in reads["Currencies"].currencies or [] if c.code),
        tracking={
            category.name: frozenset(
                option.name for option in category.options or [] if _enum(option.status) == "ACTIVE"
            )
            for category in reads["TrackingCategories"].tracking_categories or []
            if category.name and _enum(category.status) == "ACTIVE"
        },
        period_lock_date=getattr(organisation, "period_lock_date", None),
        end_of_year_lock_date=getattr(organisation, "end_of_year_lock_date", None),
    )
