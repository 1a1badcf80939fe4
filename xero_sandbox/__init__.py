"""A faithful local fake of the Xero Accounting API and its OAuth2 token
endpoint, for driving xero-python over real HTTP on loopback.

    sandbox = XeroSandbox.start()            # http://127.0.0.1:<port>
    backend = sandbox.backend                # state, rules, faults, clock
"""

from .backend import SandboxBackend
from .faults import FaultSwitches
from .records import Clock, Limits, RequestRecord
from .server import XeroSandbox

__all__ = ["XeroSandbox", "SandboxBackend", "FaultSwitches", "Limits", "Clock", "RequestRecord"]
