"""Shared fixtures of the ohmflow.nn tests (skipped whole without torch)."""

import pytest

pytest.importorskip("torch")

from ohmflow.host import datasets  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    return datasets.digits()
