"""Alerts go where the connection xero_alerts says, say which run and why, and are off without it."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from astute_xero.notifications import XeroAlertNotifier


@pytest.fixture
def webhook():
    """A webhook endpoint (the receiving side, e.g. Slack's): records every JSON body posted to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


class FailedRun:
    dag_id = "xero_invoice_export"
    run_id = "scheduled__2026-11-30T00:00:00+00:00"
    state = "failed"


def test_a_failed_run_is_posted_to_the_webhook_of_the_alert_connection(webhook, monkeypatch):
    url, received = webhook
    monkeypatch.setenv("AIRFLOW_CONN_XERO_ALERTS", json.dumps({"conn_type": "http", "host": url}))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    XeroAlertNotifier().notify({"dag_run": FailedRun(), "reason": "task_failure"})
    assert len(received) == 1
    alert = received[0]
    assert alert["dag_id"] == "xero_invoice_export" and alert["run_id"] == FailedRun.run_id
    assert alert["reason"] == "task_failure"
    assert alert["url"] == f"https://airflow.example.com/dags/xero_invoice_export/runs/{FailedRun.run_id}"
    assert alert["text"].startswith("Astute → Xero export failed: xero_invoice_export")


def test_the_deadline_alert_is_awaited_in_the_triggerer_and_posts_too(webhook, monkeypatch):
    url, received = webhook
    monkeypatch.setenv("AIRFLOW_CONN_XERO_ALERTS", json.dumps({"conn_type": "http", "host": url}))

    async def triggerer():  # how Airflow runs an AsyncCallback of a notifier class: constructed, then awaited
        await XeroAlertNotifier(subject="still running", context={"dag_run": {"dag_id": "xero_invoice_export",
                                                                               "run_id": "r1"}})

    asyncio.run(triggerer())
    assert [alert["text"][:len("still running: xero_invoice_export, run r1")] for alert in received] == [
        "still running: xero_invoice_export, run r1"]


def test_without_the_alert_connection_nothing_is_sent_and_nothing_fails(webhook, monkeypatch, caplog):
    _url, received = webhook
    monkeypatch.delenv("AIRFLOW_CONN_XERO_ALERTS", raising=False)
    with caplog.at_level("INFO", logger="astute_xero.notifications"):
        XeroAlertNotifier().notify({"dag_run": FailedRun()})
    assert received == []
    assert "no Airflow connection 'xero_alerts'" in caplog.text


def test_an_unreachable_webhook_is_logged_not_raised(monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_XERO_ALERTS", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/hook"}))
    XeroAlertNotifier().notify({"dag_run": FailedRun()})
    assert "Alert through connection 'xero_alerts' failed" in caplog.text


@pytest.fixture
def mailbox():
    """An SMTP server on loopback (the receiving side of the alert e-mail): keeps each message it is sent."""
    import email
    import email.policy
    import socketserver

    received: list = []

    class Session(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self):
            self.reply("220 mailbox ready")
            while line := self.rfile.readline():
                command = line.decode().strip().upper()
                if command.startswith(("EHLO", "HELO")):
                    self.reply("250 mailbox")
                elif command == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    body = b""
                    while (data := self.rfile.readline()) not in (b".\r\n", b""):
                        body += data[1:] if data.startswith(b"..") else data
                    received.append(email.message_from_bytes(body, policy=email.policy.default))
                    self.reply("250 queued")
                elif command == "QUIT":
                    self.reply("221 bye")
                    return
                else:  # MAIL FROM, RCPT TO, RSET, NOOP
                    self.reply("250 ok")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def test_the_alert_e_mail_shows_the_alert_as_text_whatever_characters_it_holds(mailbox, monkeypatch):
    port, received = mailbox
    monkeypatch.setenv("AIRFLOW_CONN_XERO_ALERTS", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"to": "finance-ops@example.com", "from_email": "airflow@example.com",
                  "disable_ssl": True, "disable_tls": True, "retry_limit": 0}}))
    reason = "Xero said <script>alert('x')</script> & R&D Pty <Ltd>\nthen the next try failed too"

    XeroAlertNotifier().notify({"dag_run": FailedRun(), "reason": reason})

    (message,) = received
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "<Ltd>" not in html, "the alert is text, never markup"
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; R&amp;D Pty &lt;Ltd&gt;" in html
    assert "&lt;Ltd&gt;<br>\nthen the next try failed too" in html, "each line of the alert stays a line"
    assert message["subject"].startswith("Astute → Xero export failed: xero_invoice_export")
    assert "\n" not in message["subject"], "a subject is one line"
