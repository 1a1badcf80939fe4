from __future__ import annotations

from typing import Iterator

import pytest

from xero_sandbox import XeroSandbox

from .sandbox_helpers import Xero, connect


# Overrides the project-wide `xero` fixture for this directory: here every test
# gets one connected organisation and a client (the session's `sandbox` is shared).
@pytest.fixture
def xero(sandbox: XeroSandbox) -> Iterator[Xero]:
    sandbox.backend.reset()
    yield connect(sandbox)
    sandbox.backend.reset()
