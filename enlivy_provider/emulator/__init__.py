"""A local emulator of the Enlivy REST API (FastAPI + SQLite) for tests, demos and users' own DAG tests."""
