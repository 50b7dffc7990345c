"""The CLI fixtures live in tests/cli_fixtures.py, loaded for every test package by tests/conftest.py."""
