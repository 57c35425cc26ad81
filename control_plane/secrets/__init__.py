"""Secrets: a store protocol with Vault (hvac) and local AES-GCM backends, the API and broker."""
