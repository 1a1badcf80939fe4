"""Alerts: a failed run, or an export run past its deadline, told to people through one Airflow connection.

The connection `xero_alerts` says where alerts go; without it, alerts are only logged (they are optional):
- type `smtp` (the SMTP provider's form): an e-mail to the addresses in its extra "to" (comma-separated), from
  its extra "from_email", through that same connection;
- type `http`: a webhook. Its host is the URL (e.g. https://hooks.slack.com/services/…, or any endpoint taking
  JSON); the body is {"text": <the alert>, "dag_id", "run_id", "reason", "url"} (Slack and Teams read "text").

The same notifier serves the DAGs' on_failure_callback (run when a DAG run fails) and the export DAG's deadline
alert (awaited in the triggerer, through async_notify).
"""

from __future__ import annotations

import asyncio
import html
import logging
from typing import Any

import requests
from airflow.sdk import BaseNotifier

ALERT_CONN_ID = "xero_alerts"
WEBHOOK_TIMEOUT_S = (5, 15)

log = logging.getLogger(__name__)


def _value(context: Any, key: str) -> Any:
    return context.get(key) if hasattr(context, "get") else None


def describe(context: Any, subject: str) -> dict[str, Any]:
    """What the alert says: which DAG and run, why, and where to look."""
    from airflow.sdk.configuration import conf

    dag_run = _value(context, "dag_run")
    dag = _value(context, "dag")
    read = (lambda obj, name: obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None))
    dag_id = read(dag_run, "dag_id") or getattr(dag, "dag_id", None) or "?"
    run_id = read(dag_run, "run_id") or "?"
    reason = _value(context, "reason") or read(dag_run, "state") or ""
    base_url = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    url = f"{base_url}/dags/{dag_id}/runs/{run_id}" if base_url else None
    text = f"{subject}: {dag_id}, run {run_id}" + (f" ({reason})" if reason else "") + (f". {url}" if url else "")
    return {"text": text, "dag_id": dag_id, "run_id": run_id, "reason": str(reason), "url": url}


def alert_html(text: str) -> str:
    """The alert as the e-mail's HTML: its text escaped (a reason may quote Xero, a customer's name or an
    exception, any of which can hold `<` or `&`), each of its lines a line."""
    return "<p>" + "<br>\n".join(html.escape(line) for line in text.splitlines()) + "</p>"


class XeroAlertNotifier(BaseNotifier):
    """Sends one alert through the connection `conn_id` (see the module's docstring); a missing connection
    means alerts are off: logged, nothing sent. A failure to send is logged, never raised (the run's own
    state is what matters)."""

    template_fields = ("subject",)

    def __init__(self, subject: str = "Astute → Xero export failed", conn_id: str = ALERT_CONN_ID, **kwargs: Any):
        super().__init__(**kwargs)
        self.subject = subject
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        from airflow.sdk import BaseHook

        alert = describe(context, self.subject)
        try:
            conn = BaseHook.get_connection(self.conn_id)
        except Exception:  # the SDK raises its own not-found error: no connection, alerts are off
            log.info("Alert not sent (no Airflow connection '%s'): %s", self.conn_id, alert["text"])
            return
        try:
            if conn.conn_type == "smtp":
                self._email(conn, alert, context)
            else:
                self._webhook(conn, alert)
        except Exception as error:  # an alert that cannot be sent must not fail anything else
            log.error("Alert through connection '%s' failed (%s): %s", self.conn_id, type(error).__name__, alert["text"])

    async def async_notify(self, context: Any) -> None:
        await asyncio.to_thread(self.notify, context)

    def _email(self, conn: Any, alert: dict[str, Any], context: Any) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        extra = conn.extra_dejson
        recipients = [address.strip() for address in str(extra.get("to", "")).split(",") if address.strip()]
        if not recipients:
            raise ValueError(f"connection '{self.conn_id}' (smtp) has no extra 'to'")
        SmtpNotifier(to=recipients, from_email=extra.get("from_email"), subject=" ".join(alert["text"].split())[:180],
                     html_content=alert_html(alert["text"]), smtp_conn_id=self.conn_id).notify(context)

    def _webhook(self, conn: Any, alert: dict[str, Any]) -> None:
        url = conn.host if "://" in (conn.host or "") else f"https://{conn.host}"
        response = requests.post(url, json=alert, timeout=WEBHOOK_TIMEOUT_S)
        response.raise_for_status()
        log.info("Alert sent through connection '%s' (HTTP %s).", self.conn_id, response.status_code)
