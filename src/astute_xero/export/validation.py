"""Validation before any call to Xero: the Report Summary's "Validation Errors".

Invoices and credit notes are checked by columns with Great Expectations, one
batch of documents of one kind (and their lines) at a time, against the chart of
the Xero organisation they go to. Each failed expectation names the rows it
failed on; every such row becomes a ValidationIssue a finance person can act on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from astute_xero.xero.chart import TRACKING_INCOMPLETE, XeroChart, tracking_key
from astute_xero.export.documents import CREDIT_NOTE, INVOICE, DocumentKind

HEADER_COLUMNS = [
    "document_id", "number", "customer_name", "document_date", "due_date", "currency", "line_count", "subtotal",
    "credited_invoice_id", "credited_invoice_number", "credited_invoice_problem", "reference",
]
LINE_COLUMNS = [
    "document_id", "line_no", "description", "quantity", "unit_amount", "line_amount", "account_code", "tax_type",
    "tracking_name", "tracking_option",
]

# Xero's field limits (its API documentation and OpenAPI spec): a longer value is refused.
MAX_DESCRIPTION_LENGTH = 4000
MAX_NUMBER_LENGTH = 255  # InvoiceNumber, CreditNoteNumber
MAX_REFERENCE_LENGTH = 255
MAX_CONTACT_NAME_LENGTH = 255
MAX_LINE_AMOUNT = 100_000_000  # no labour-hire line is worth this much: a unit or quantity typo


@dataclass(frozen=True)
class ValidationIssue:
    document_id: int
    line_no: int | None
    rule: str
    message: str


@dataclass(frozen=True)
class _Rule:
    name: str
    table: str  # "header" or "line"
    expectation: Callable[[XeroChart], Any]  # None: the rule does not apply to this organisation
    message: Callable[[dict[str, Any], XeroChart], str]
    kinds: tuple[DocumentKind, ...] = (INVOICE, CREDIT_NOTE)


def _gx() -> Any:
    # Imported here: great_expectations takes seconds to import and DAG parsing must stay fast.
    import great_expectations as gx

    return gx


def _rules() -> list[_Rule]:
    gx = _gx()
    E = gx.expectations
    return [
        _Rule(
            "customer_name_missing",
            "header",
            lambda chart: E.ExpectColumnValuesToNotMatchRegex(column="customer_name", regex=r"^\s*$"),
            lambda row, chart: "The customer has no name. Enter the customer's name in Astute "
            "(Users > Customers), then export again.",
        ),
        _Rule(
            "customer_name_too_long",
            "header",
            lambda chart: E.ExpectColumnValueLengthsToBeBetween(column="customer_name", max_value=MAX_CONTACT_NAME_LENGTH),
            lambda row, chart: f"The customer's name has {len(row['customer_name'])} characters; a Xero Contact name "
            f"has at most {MAX_CONTACT_NAME_LENGTH}. Shorten it in Astute (Users > Customers).",
        ),
        _Rule(
            "number_too_long",
            "header",
            lambda chart: E.ExpectColumnValueLengthsToBeBetween(column="number", max_value=MAX_NUMBER_LENGTH),
            lambda row, chart: f"Its number has {len(row['number'])} characters; Xero accepts at most "
            f"{MAX_NUMBER_LENGTH}. Correct the number in Astute.",
        ),
        _Rule(
            "reference_too_long",
            "header",
            lambda chart: E.ExpectColumnValueLengthsToBeBetween(column="reference", max_value=MAX_REFERENCE_LENGTH),
            lambda row, chart: f"Its reference has {len(row['reference'])} characters; Xero accepts at most "
            f"{MAX_REFERENCE_LENGTH}. Shorten the reference in Astute.",
        ),
        _Rule(
            "no_lines",
            "header",
            lambda chart: E.ExpectColumnValuesToBeBetween(column="line_count", min_value=1),
            lambda row, chart: "It has no lines. Add at least one line in Astute, or void it.",
        ),
        _Rule(
            "due_before_invoice_date",
            "header",
            lambda chart: E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="due_date", column_B="document_date", or_equal=True
            ),
            lambda row, chart: f"The due date {row['due_date']:%Y-%m-%d} is before the invoice date "
            f"{row['document_date']:%Y-%m-%d}. Correct the due date in Astute.",
            kinds=(INVOICE,),
        ),
        _Rule(
            "lock_date",
            "header",
            lambda chart: None if chart.lock_date is None else E.ExpectColumnValuesToBeBetween(
                column="document_date", min_value=dt.datetime.combine(chart.lock_date, dt.time()), strict_min=True
            ),
            lambda row, chart: f"{_described(row)} is dated "
            f"{row['document_date']:%Y-%m-%d}, on or before the {chart.lock_date_name} {chart.lock_date:%Y-%m-%d} of "
            f"the Xero organisation '{chart.organisation_name}': Xero accepts nothing dated on or before it. To send "
            f"it, ask your Xero adviser to move the lock date, or re-date the {row['kind'].label.lower()} in Astute.",
        ),
        _Rule(
            "currency_not_subscribed",
            "header",
            lambda chart: E.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(chart.currencies)),
            lambda row, chart: f"Currency {row['currency']} is not enabled in the Xero organisation "
            f"'{chart.organisation_name}'. Add it in Xero (Settings > Currencies) or correct the currency in Astute.",
        ),
        _Rule(
            "negative_total",
            "header",
            lambda chart: E.ExpectColumnValuesToBeBetween(column="subtotal", min_value=0),
            lambda row, chart: f"It adds up to {row['subtotal']:,.2f}, a negative amount. A credit is raised "
            "as a credit note in Astute, not as a negative invoice; a credit note's lines are positive amounts.",
        ),
        _Rule(
            "credited_invoice_mismatch",
            "header",
            lambda chart: E.ExpectColumnValuesToBeNull(column="credited_invoice_problem"),
            lambda row, chart: f"It credits invoice {row['credited_invoice_number']}, which "
            f"{row['credited_invoice_problem']}. Xero allocates a credit note only to a posted invoice of the same "
            "organisation, Contact and currency: correct the credit note's invoice in Astute.",
            kinds=(CREDIT_NOTE,),
        ),
        _Rule(
            "line_amount_implausible",
            "line",
            lambda chart: E.ExpectColumnValuesToBeBetween(
                column="line_amount", min_value=-MAX_LINE_AMOUNT, max_value=MAX_LINE_AMOUNT
            ),
            lambda row, chart: f"Line {row['line_no']}: {row['quantity']:f} x {row['unit_amount']:f} = "
            f"{row['line_amount']:,.2f} is implausible (over {MAX_LINE_AMOUNT:,}). Check the quantity and unit amount.",
        ),
        _Rule(
            "account_code_missing",
            "line",
            lambda chart: E.ExpectColumnValuesToNotBeNull(column="account_code"),
            lambda row, chart: f"Line {row['line_no']} has no GL account code. Set the account code on the line in Astute.",
        ),
        _Rule(
            "account_code_unknown",
            "line",
            lambda chart: E.ExpectColumnValuesToBeInSet(column="account_code", value_set=sorted(chart.account_codes)),
            lambda row, chart: f"Line {row['line_no']}: account code '{row['account_code']}' is not an active account "
            f"in the chart of accounts of '{chart.organisation_name}'. Use a code that exists in Xero.",
        ),
        _Rule(
            "tax_type_unknown",
            "line",
            lambda chart: E.ExpectColumnValuesToBeInSet(column="tax_type", value_set=sorted(chart.tax_types)),
            lambda row, chart: f"Line {row['line_no']}: tax type '{row['tax_type']}' does not exist in "
            f"'{chart.organisation_name}'. Use one of its tax rates (Xero: Settings > Tax rates).",
        ),
        _Rule(
            "description_too_long",
            "line",
            lambda chart: E.ExpectColumnValueLengthsToBeBetween(column="description", max_value=MAX_DESCRIPTION_LENGTH),
            lambda row, chart: f"Line {row['line_no']}: the description has {len(row['description'])} characters; "
            f"Xero accepts at most {MAX_DESCRIPTION_LENGTH}. Shorten it in Astute.",
        ),
        _Rule(
            "tracking_incomplete",
            "line",
            lambda chart: E.ExpectColumnValuesToNotBeInSet(column="tracking_key", value_set=[TRACKING_INCOMPLETE]),
            lambda row, chart: f"Line {row['line_no']} has a tracking "
            + (f"category '{row['tracking_name']}' but no option" if isinstance(row["tracking_name"], str)
               else f"option '{row['tracking_option']}' but no category")
            + ". Xero needs both: complete the line's tracking in Astute, or clear it.",
        ),
        _Rule(
            "tracking_unknown",
            "line",
            lambda chart: E.ExpectColumnValuesToBeInSet(
                column="tracking_key", value_set=[*chart.tracking_keys, TRACKING_INCOMPLETE]
            ),
            lambda row, chart: f"Line {row['line_no']}: "
            + chart.tracking_problem(row["tracking_name"], row["tracking_option"])
            + ". Correct the line's tracking in Astute, or add it in Xero (Settings > Tracking categories).",
        ),
    ]


class DocumentValidator:
    """One Great Expectations context for a whole task; suites are built per organisation chart."""

    def __init__(self) -> None:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self._context.data_sources.add_pandas("astute")
        self._batches = {
            table: source.add_dataframe_asset(table).add_batch_definition_whole_dataframe(f"{table}_batch")
            for table in ("header", "line")
        }
        self._rules = _rules()
        self._definitions: dict[tuple[str, str, str], Any] = {}

    def _definition(self, kind: DocumentKind, table: str, chart: XeroChart) -> Any:
        key = (kind.name, table, chart.tenant_id)
        if key not in self._definitions:
            gx = self._gx
            name = "-".join(key)
            suite = self._context.suites.add(gx.ExpectationSuite(name=name))
            for rule in self._rules:
                if rule.table == table and kind in rule.kinds:
                    expectation = rule.expectation(chart)
                    if expectation is None:
                        continue
                    expectation.meta = {"rule": rule.name}
                    suite.add_expectation(expectation)
            self._definitions[key] = self._context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=self._batches[table], suite=suite)
            )
        return self._definitions[key]

    def validate(
        self, kind: DocumentKind, headers: pd.DataFrame, lines: pd.DataFrame, chart: XeroChart
    ) -> list[ValidationIssue]:
        """Every issue found in this batch of documents of one kind, one per failing document (or line) and rule."""
        issues: list[ValidationIssue] = []
        for table, frame, keys in (
            ("header", headers, ["document_id"]),
            ("line", lines, ["document_id", "line_no"]),
        ):
            if frame.empty:
                continue
            frame = frame.reset_index(drop=True)
            result = self._definition(kind, table, chart).run(
                batch_parameters={"dataframe": frame},
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": keys},
            )
            issues.extend(self._issues(kind, table, frame, result, chart))
        return issues

    def _issues(
        self, kind: DocumentKind, table: str, frame: pd.DataFrame, result: Any, chart: XeroChart
    ) -> Iterable[ValidationIssue]:
        by_name = {rule.name: rule for rule in self._rules}
        indexed = frame.set_index(["document_id", "line_no"] if table == "line" else ["document_id"], drop=False)
        for outcome in result.results:
            if outcome.success:
                continue
            rule = by_name[outcome.expectation_config.meta["rule"]]
            for index in outcome.result.get("unexpected_index_list") or []:
                document_id = int(index["document_id"])
                line_no = int(index["line_no"]) if table == "line" else None
                row = indexed.loc[(document_id, line_no) if line_no is not None else document_id]
                if isinstance(row, pd.DataFrame):  # duplicate keys cannot happen, but never index blindly
                    row = row.iloc[0]
                values = {**row.to_dict(), "kind": kind}
                yield ValidationIssue(document_id, line_no, rule.name, rule.message(values, chart))


def _described(row: dict[str, Any]) -> str:
    """"Invoice INV-7", or "Invoice id 42 (no number)": pandas makes a missing number NaN, not None."""
    number = row["number"] if isinstance(row["number"], str) else None
    return row["kind"].describe(int(row["document_id"]), number)


def header_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=HEADER_COLUMNS)
    frame["document_date"] = pd.to_datetime(frame["document_date"])
    frame["due_date"] = pd.to_datetime(frame["due_date"])
    frame["line_count"] = frame["line_count"].astype("int64")
    frame["subtotal"] = frame["subtotal"].astype("float64")  # compared with a bound only: float is exact enough
    return frame


def line_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=LINE_COLUMNS)
    frame["line_amount"] = frame["line_amount"].astype("float64")
    # From the rows, not the frame: pandas turns a missing text into NaN, which is neither None nor a str.
    frame["tracking_key"] = [tracking_key(row[-2], row[-1]) for row in rows]
    return frame
