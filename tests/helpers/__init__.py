"""Helpers shared by the test suites (test PKI, lineages)."""
