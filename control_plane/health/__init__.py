"""Tenant health: healthy, degraded, down or unknown, always with the reasons."""
