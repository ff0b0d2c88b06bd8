"""The `tuike` command line."""
