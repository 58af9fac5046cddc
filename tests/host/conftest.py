"""Shared fixtures of the host tests."""

import pytest
from ohmflow.host import datasets


@pytest.fixture(scope="session")
def digits():
    return datasets.digits()
