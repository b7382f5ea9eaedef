"""FHIR R4 input: plain dicts parsed with orjson, read field by field into the core record.

Deliberately no FHIR model library: fhir.resources dropped R4, and validating whole bundles
would dominate latency. We read only the fields the rules use and reject what cannot be used.
"""

from injectwise.adapters.fhir.reader import read_bundle, read_bundle_file

__all__ = ["read_bundle", "read_bundle_file"]
