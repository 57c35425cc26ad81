"""Run the sandbox with uvicorn (``storeops sandbox`` and ``python -m
tenant_runtime.sandbox`` both end here)."""

from __future__ import annotations

import uvicorn

from tenant_runtime.sandbox.app import create_sandbox_app
from tenant_runtime.sandbox.config import SandboxConfig

DEFAULT_PORT = 8700


def serve(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, config: SandboxConfig | None = None
) -> None:
    uvicorn.run(create_sandbox_app(config), host=host, port=port, log_level="info")
