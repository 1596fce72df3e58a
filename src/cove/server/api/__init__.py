"""API surfaces: each module translates one protocol to the session manager."""
