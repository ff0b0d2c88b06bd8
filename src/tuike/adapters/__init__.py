"""Ports to the outside world, with real and null implementations chosen by settings."""
