"""Deployments: which template versions each tenant runs, with what parameters and bindings."""
