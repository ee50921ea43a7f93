"""Test plugins for Tracelet's own test suite."""
