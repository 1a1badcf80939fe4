"""Astute → Xero accounts-receivable export: the domain, free of Airflow where it can be."""
