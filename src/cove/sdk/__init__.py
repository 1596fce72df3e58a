"""Cove's Python SDK: `core` holds every call once; `sync_client` and `async_client` send them."""
