"""Domain core: the patient record model, dates and errors shared by every layer."""
