"""What happens in Xero after the export, read back: payments, voids, edits, merged Contacts, and drift."""
