"""Helpers shared by the tests (importable as ``support``: pyproject.toml puts tests/ on the path).

bridges: starting the real bridge with HOME in a temp dir; tracking: real stores and services;
recordings: the replay harness of protocol/recordings.
"""
