"""The package is a real Airflow provider: installed (editable) in the project's .venv, found through its
`apache_airflow_provider` entry point, with the xero connection type and its labelled form."""

from __future__ import annotations

import json
import subprocess
import sys


def airflow(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "airflow", *args], check=True, capture_output=True, text=True).stdout


def test_airflow_lists_the_provider_and_its_hook(airflow_home):
    providers = {p["package_name"]: p for p in json.loads(airflow("providers", "list", "-o", "json"))}
    assert providers["astute-xero-provider"]["version"] == "1.0.0"
    hooks = json.loads(airflow("providers", "hooks", "-o", "json"))
    xero = [h for h in hooks if h["connection_type"] == "xero"]
    assert xero and xero[0]["class"] == "astute_xero.hooks.XeroHook"


def test_a_xero_connection_is_added_with_its_own_type(airflow_home):
    airflow("connections", "add", "xero_provider_test", "--conn-type", "xero", "--conn-login", "client-id",
            "--conn-password", "client-secret", "--conn-extra", json.dumps({"grant_type": "client_credentials"}))
    stored = json.loads(airflow("connections", "get", "xero_provider_test", "-o", "json"))[0]
    assert stored["conn_type"] == "xero" and stored["extra_dejson"] == {"grant_type": "client_credentials"}


def test_the_connection_form_has_the_xero_fields_with_labels_and_defaults():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = {name.split("__")[-1]: widget.field for name, widget in manager.connection_form_widgets.items()
               if name.startswith("extra__xero__")}
    assert set(widgets) == {"grant_type", "refresh_token", "scope", "api_url", "identity_url", "login_url"}
    assert widgets["grant_type"]["schema"]["enum"] == ["authorization_code", "client_credentials"]
    assert widgets["refresh_token"]["schema"]["format"] == "password"  # masked in the form
    assert widgets["scope"]["value"].split()[:2] == ["offline_access", "accounting.invoices"]
    assert widgets["api_url"]["value"] == "https://api.xero.com"
    behaviour = manager.field_behaviours["xero"]
    assert behaviour["relabeling"] == {"login": "Client ID", "password": "Client secret"}
    assert set(behaviour["hidden_fields"]) == {"host", "schema", "port"}
