"""tuike: an open-source affiliate marketing platform."""

__version__ = "0.1.0"
