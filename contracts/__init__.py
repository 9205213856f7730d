"""Event contracts: JSON Schemas (the source of truth), typed records and ingress validation."""
