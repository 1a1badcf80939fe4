"""The Xero side: the SDK client and its error rules, the OAuth2 token chain, rate-limit pacing, the chart of accounts, and onboarding (consent, Custom Connections, the tenant list)."""
