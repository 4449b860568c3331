"""vitriflow: high-throughput modelling of glasses and amorphous solids."""

__version__ = "0.1.0"
