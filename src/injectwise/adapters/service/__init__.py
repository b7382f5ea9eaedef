"""HTTP adapter: CDS Hooks 2.0 service and REST API around the same engine as the CLI."""
