"""The export pipeline: reading Astute, validating, Contacts, chunk planning, the chunk export protocol, credit-note allocation, and the task bodies the DAGs call."""
