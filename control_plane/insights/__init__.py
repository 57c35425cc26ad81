"""Insights: recurring incident patterns that tenant runtimes find and report home."""
