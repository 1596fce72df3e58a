"""Sandbox runtime: images, OCI specs, runc, mounts and cgroups."""
