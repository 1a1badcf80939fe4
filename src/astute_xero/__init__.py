"""Astute → Xero accounts-receivable export, as an Airflow provider: the domain, free of Airflow where it can be.

xero/: the Xero side (SDK client, tokens, pacing, chart, onboarding). export/: the pipeline the DAGs run.
operations/: the pipeline's own state (migrations, resets, links, retention). report/: summary, report, UI page.
"""

__version__ = "1.0.0"
