"""HTTP: tracker hot path, REST API, portals."""
