from __future__ import annotations

from astute_xero.export.contacts import name_key
from astute_xero.xero.client import escape_where_string


def test_names_compare_like_xero_ignoring_case_accents_and_spaces():
    assert name_key("  Zoë's Café ") == name_key("ZOE'S CAFE")
    assert name_key("Acme Mining Pty Ltd") == name_key("ACME MINING PTY LTD")
    assert name_key("Acme Mining") != name_key("Acme Minings")
    assert name_key("Ōtautahi Builders") == name_key("otautahi builders")


def test_where_strings_escape_quotes_and_backslashes():
    assert escape_where_string('The "Best" Co') == 'The \\"Best\\" Co'
    assert escape_where_string("A\\B") == "A\\\\B"
    assert escape_where_string("O'Brien & Sons") == "O'Brien & Sons"
