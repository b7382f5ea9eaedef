"""Population screening over FHIR Bulk Data: the same engine and knowledge as one patient, per patient,
on one machine (`local`) or on Spark (`spark`), plus a synthetic population generator."""
