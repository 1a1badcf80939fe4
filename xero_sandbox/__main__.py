"""Run the sandbox standalone: ``python -m xero_sandbox --host 127.0.0.1 --port 8765``.

With ``--client-id/--client-secret`` and one or more ``--tenant NAME`` it also
seeds an app, organisations and a consent, and prints the first refresh token
(a sandbox-only credential) so a demo can start without a browser."""

from __future__ import annotations

import argparse
import json

from .server import XeroSandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m xero_sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--tenant", action="append", default=[], help="seed an organisation with this name")
    args = parser.parse_args(argv)

    sandbox = XeroSandbox.start(host=args.host, port=args.port)
    print(f"Xero sandbox listening on {sandbox.url}", flush=True)
    if args.client_id and args.client_secret:
        backend = sandbox.backend
        backend.register_app(args.client_id, args.client_secret)
        tenants = {name: backend.add_tenant(name) for name in args.tenant or ["Demo Company (AU)"]}
        seed = {"url": sandbox.url, "tenants": tenants,
                "refresh_token": backend.authorise(args.client_id, list(tenants.values()))}
        print(json.dumps(seed), flush=True)

    sandbox.serve_until_stopped()


if __name__ == "__main__":
    main()
