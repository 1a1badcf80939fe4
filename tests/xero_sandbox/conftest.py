from __future__ import annotations

from typing import Iterator

import pytest

from xero_sandbox import XeroSandbox

from .sandbox_helpers import Xero, connect


# These override the project-wide fixtures of the same names for this
# directory: here every test gets one connected organisation and a client.
@pytest.fixture(scope="session")
def sandbox() -> Iterator[XeroSandbox]:
    running = XeroSandbox.start(host="127.0.0.1", port=0)
    yield running
    running.stop()


@pytest.fixture
def xero(sandbox: XeroSandbox) -> Iterator[Xero]:
    sandbox.backend.reset()
    yield connect(sandbox)
    sandbox.backend.reset()
