"""Helpers shared by the test suites: real databases, made fresh and dropped after."""
