"""``python -m tenant_runtime.sandbox [--host H] [--port P] [--seed N] [--config FILE]``."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec

from tenant_runtime.sandbox.config import SandboxConfig
from tenant_runtime.sandbox.server import DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tenant_runtime.sandbox",
        description="Simulated ERP/POS/WMS/CRM/HR/ITSM/eCommerce/payments",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, help="seed of the generated data and the faults")
    parser.add_argument("--config", type=Path, help="JSON file: {seed, auth, faults}")
    args = parser.parse_args(argv)
    config = SandboxConfig()
    if args.config:
        config = msgspec.json.decode(args.config.read_bytes(), type=SandboxConfig)
    if args.seed is not None:
        config = msgspec.structs.replace(config, seed=args.seed)
    serve(args.host, args.port, config)


if __name__ == "__main__":
    main()
