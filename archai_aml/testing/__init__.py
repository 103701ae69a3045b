"""Helpers for tests and bench scripts that need real services (Azurite)."""
