"""Readers: CSV, Parquet, JSON Lines and in-memory tables, in bounded chunks."""
