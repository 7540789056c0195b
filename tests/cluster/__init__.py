"""The cluster tier: a real control plane (see conftest.py). A package, so its conftest and modules
have names of their own beside tests/conftest.py."""
