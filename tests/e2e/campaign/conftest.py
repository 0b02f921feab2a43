"""The fault campaign's checker on a running system. It runs with the asset-library
tests' settings (a default plan with credits and avatar slots), so that it shares the
system they leave running instead of starting one of its own."""

from tests.e2e.assets.conftest import service_environment

__all__ = ["service_environment"]
