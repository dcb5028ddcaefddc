"""Assertion rewriting for the contract base class (it is not a test_*.py module), so failures show values."""

import pytest

pytest.register_assert_rewrite("tests.venues.contract")
