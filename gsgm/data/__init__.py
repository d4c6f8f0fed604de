"""Datasets, generators and preprocessing for jets stored in the JetNet format."""
