"""Pure business rules: no framework, no I/O."""
