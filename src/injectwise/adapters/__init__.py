"""Adapters at the edges (FHIR input, CLI, later CDS Hooks, web, storage); they depend inward only."""
