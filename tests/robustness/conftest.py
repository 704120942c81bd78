"""Shared by the robustness tests: the official-layout fixtures of the unit tests, reused as they are."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from tests.unit.test_coco_data import coco_dir  # noqa: F401 - a fixture, used by name
from tests.unit.test_vqa_official import vqav2_dir  # noqa: F401 - a fixture, used by name


def one_line(excinfo: pytest.ExceptionInfo[HarnessError]) -> str:
    """The message of a raised HarnessError, checked to be a single line."""
    message = str(excinfo.value)
    assert message and "\n" not in message and "\r" not in message, message
    return message
