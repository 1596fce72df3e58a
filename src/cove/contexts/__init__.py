"""Contexts: named persistent storage owned by an API key (the store, the storage backends, the service)."""
