"""Imports every module that registers a periodic job with :func:`control_plane.jobs.job`."""

from __future__ import annotations
