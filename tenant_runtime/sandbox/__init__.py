"""Simulated retail systems (ERP, POS, WMS, CRM, HR, service desk, eCommerce, payments)
in one Litestar app, for the demo and the tests: ``POST /{system}/{operation}`` with
idempotency keys, a request log that counts effects exactly, fault injection and optional
per-system credentials. See :mod:`tenant_runtime.sandbox.app` for the admin routes."""

from __future__ import annotations

from tenant_runtime.sandbox.app import create_sandbox_app
from tenant_runtime.sandbox.config import AuthConfig, FaultRule, SandboxConfig
from tenant_runtime.sandbox.gateway import Answer, Sandbox
from tenant_runtime.sandbox.registry import SYSTEMS
from tenant_runtime.sandbox.server import serve

__all__ = [
    "SYSTEMS",
    "Answer",
    "AuthConfig",
    "FaultRule",
    "Sandbox",
    "SandboxConfig",
    "create_sandbox_app",
    "serve",
]
