"""``storeops brand`` on the embedded SQLite path: publish with a logo, preview a draft,
roll back, claim a domain; mistakes are one line and change nothing."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.branding.conftest import PALETTE, png
from tests.test_cli import cli, ok, refused

__all__ = ["cli"]


def test_publish_preview_rollback_and_claim(cli: CliRunner, tmp_path: Path) -> None:
    ok(cli, "partner create --slug north --name 'North MSP' --kind msp")
    theme = tmp_path / "theme.json"
    theme.write_text(json.dumps({"product_name": "North Ops", "colors": PALETTE}))
    logo = tmp_path / "logo.png"
    logo.write_bytes(png())
    assert (
        "theme version 1: published"
        in ok(cli, f"brand publish {theme} --partner north --logo {logo}").output
    )
    shown = json.loads(ok(cli, "brand show --partner north").output)
    assert shown["product_name"] == "North Ops" and shown["logo"]["media_type"] == "image/png"

    theme.write_text(json.dumps({"product_name": "North Next"}))
    draft = ok(cli, f"brand publish {theme} --partner north --draft-only").output
    assert "theme version 2: draft" in draft and "/login?preview=" in draft
    assert json.loads(ok(cli, "brand show --partner north").output)["product_name"] == "North Ops"

    versions = ok(cli, "brand versions --partner north").output
    assert "draft" in versions and "published" in versions
    out = ok(cli, "brand claim portal.north.example --partner north").output
    assert "/.well-known/storeops-challenge/" in out
    assert "pending" in ok(cli, "brand domains --partner north").output
    # Unverified: the host still gets the platform brand.
    host = json.loads(ok(cli, "brand show --host portal.north.example").output)
    assert host["product_name"] == "StoreOps"


def test_mistakes_are_one_line(cli: CliRunner, tmp_path: Path) -> None:
    ok(cli, "partner create --slug north --name 'North MSP' --kind msp")
    theme = tmp_path / "theme.json"
    theme.write_text(json.dumps({"colors": {**PALETTE, "text": "#cccccc"}}))
    assert "has contrast 1.60:1; WCAG 2.1 AA needs" in refused(
        cli, f"brand publish {theme} --partner north"
    )
    theme.write_text("{not json")
    assert "is not valid JSON" in refused(cli, f"brand publish {theme} --partner north")
    assert "has no published theme to roll back" in refused(cli, "brand rollback --partner north")
    assert "exactly one of --partner and --tenant" in refused(cli, "brand versions")
    assert "is a URL or has a port" in refused(cli, "brand claim https://x.example --partner north")
