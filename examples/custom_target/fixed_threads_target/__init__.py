"""A user's own archai-aml target, installed as a package of its own and registered by entry point."""
