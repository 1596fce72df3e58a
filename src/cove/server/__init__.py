"""Cove server: the ASGI app and one API surface per protocol."""
