"""The HTTP API (FastAPI). It composes store, policy and audit; it never imports vision or
the code that could rebuild the evidence key from shares."""

from privplate.api.app import create_app

__all__ = ["create_app"]
