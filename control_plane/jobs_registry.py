"""Imports every module that registers a periodic job with :func:`control_plane.jobs.job`."""

from __future__ import annotations

import control_plane.alerts.jobs
import control_plane.billing.jobs
import control_plane.rollouts.job  # noqa: F401
