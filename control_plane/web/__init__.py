"""Server-rendered pages: the sign-in page and the NOC console (templates under branding/)."""

from __future__ import annotations

from control_plane.web.app import web_handlers

__all__ = ["web_handlers"]
