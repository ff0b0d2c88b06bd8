"""Merchant, affiliate and operator portals."""
