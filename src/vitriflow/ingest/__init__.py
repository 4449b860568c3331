"""Ingestion of external experimental data into tidy, validated tables with provenance."""
