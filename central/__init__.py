"""hall-central: the hall's queue server (DESIGN.md "★ hall-central"; docs/central.md)."""
