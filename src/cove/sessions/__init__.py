"""Session lifecycle, validation and persistent store."""
