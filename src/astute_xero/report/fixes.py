"""What to fix, per reason a document is held back: the Astute record and field, or the place in Xero.

The reasons are the `rule` of xero_sync.validation_issue: the validation rules (astute_xero.export.validation),
the Contact checks (export.contacts) and what Xero refused in a payload (export.chunk_export). The
message stored with each issue already says what to do; this adds where, so the report can point at the
record (table, id, line and column) and, for Contact problems, at the customer's Link to Xero.
"""

from __future__ import annotations

from dataclasses import dataclass

from astute_xero.export.documents import INVOICE, DocumentKind


@dataclass(frozen=True)
class Fix:
    rule: str
    title: str
    where: str  # where the fix is made, in the words of Astute's or Xero's menus
    column: str | None = None  # the Astute column, on the document, its line or its customer
    scope: str = "document"  # "document", "line" or "customer"
    contact: bool = False  # about the customer's Xero Contact: the Link to Xero page shows and removes the link

    def astute_field(self, kind: DocumentKind) -> str | None:
        """The Astute column to correct, e.g. astute.invoice_line.account_code."""
        if self.column is None:
            return None
        if self.scope == "customer":
            return f"astute.customer.{self.column}"
        column = self.column
        if column == "number":
            column = "invoice_number" if kind is INVOICE else "credit_note_number"
        elif column == "document_date":
            column = "invoice_date" if kind is INVOICE else "credit_date"
        table = kind.name if self.scope == "document" else f"{kind.name}_line"
        return f"astute.{table}.{column}"


FIXES = {
    fix.rule: fix
    for fix in (
        Fix("customer_name_missing", "The customer has no name", "Astute: Users > Customers", "name", "customer"),
        Fix("customer_name_too_long", "The customer's name is too long for Xero", "Astute: Users > Customers",
            "name", "customer"),
        Fix("number_too_long", "The number is too long for Xero", "Astute: the document", "number"),
        Fix("reference_too_long", "The reference is too long for Xero", "Astute: the document", "reference"),
        Fix("no_lines", "The document has no lines", "Astute: the document's lines (add one, or void the document)"),
        Fix("due_before_invoice_date", "The due date is before the invoice date", "Astute: the invoice", "due_date"),
        Fix("lock_date", "The document is dated on or before the organisation's lock date in Xero",
            "Xero: Accounting > Advanced > Financial settings > Lock dates (your adviser), "
            "or the document's date in Astute", "document_date"),
        Fix("currency_not_subscribed", "The currency is not enabled in the Xero organisation",
            "Xero: Settings > Currencies, or the document's currency in Astute", "currency"),
        Fix("negative_total", "The document adds up to a negative amount",
            "Astute: raise a credit note instead, with positive lines", "unit_amount", "line"),
        Fix("credited_invoice_mismatch", "The credit note credits an invoice Xero cannot allocate it to",
            "Astute: the credit note's invoice", "invoice_id"),
        Fix("line_amount_implausible", "A line's amount is implausible", "Astute: the line's quantity and unit amount",
            "quantity", "line"),
        Fix("account_code_missing", "A line has no GL account code", "Astute: the line's account code",
            "account_code", "line"),
        Fix("account_code_unknown", "A line's account code is not in the Xero chart of accounts",
            "Astute: the line's account code (one that exists in Xero: Accounting > Chart of accounts)",
            "account_code", "line"),
        Fix("tax_type_unknown", "A line's tax type does not exist in the Xero organisation",
            "Astute: the line's tax type (Xero: Settings > Tax rates)", "tax_type", "line"),
        Fix("description_too_long", "A line's description is too long for Xero", "Astute: the line's description",
            "description", "line"),
        Fix("tracking_incomplete", "A line's tracking has a category without an option, or the reverse",
            "Astute: the line's tracking", "tracking_option", "line"),
        Fix("tracking_unknown", "A line's tracking category or option does not exist in Xero",
            "Astute: the line's tracking, or Xero: Settings > Tracking categories", "tracking_option", "line"),
        Fix("contact_archived", "The customer's Xero Contact is archived or gone",
            "Xero: restore the Contact, or remove the customer's Contact link (Link to Xero)", contact=True),
        Fix("contact_rename_refused", "Xero refused the customer's new name for its Contact",
            "Xero: the other Contact with that name, or the customer's name in Astute", "name", "customer",
            contact=True),
        Fix("contact_refused", "Xero would not create the customer's Contact",
            "Astute: the customer's name, or the Contact in Xero", "name", "customer", contact=True),
        Fix("payload_refused", "The document cannot be sent to Xero as it is", "Astute: the document (see the reason)"),
    )
}


def fix_for(rule: str) -> Fix:
    """The fix for a rule; a rule this version does not know still gets its message shown."""
    return FIXES.get(rule) or Fix(rule, rule.replace("_", " ").capitalize(), "See the reason")
