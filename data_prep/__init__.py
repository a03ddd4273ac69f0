"""Data preparation: sources, simulator, bronze/silver/gold transforms, data quality, MDM, features."""
