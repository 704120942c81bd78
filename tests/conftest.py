"""Test set-up: every test runs offline, with its own harness home and a private model-hub cache.

The hub cache holds tiny randomly initialised LMs written in exactly the hub's folder layout, so the
real hub loading code (snapshot resolution, revision -> commit, from_pretrained) runs unchanged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="harness-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_CACHE"] = str(_ROOT / "hub")
os.environ["HARNESS_HOME"] = str(_ROOT / "home")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from harness.checks.cpu import CPU_KERNELS  # noqa: E402
from tests.tiny_lm import write_tiny_hub_model  # noqa: E402

# The regression baselines (results/regression/*.yaml, `cpu_kernels: avx2`) run in this process after
# other tests have used the CPU, when torch's choice of vector kernels is already fixed: ask for AVX2
# kernels from the start (no change on a CPU without AVX-512), as `harness check` does from a shell.
for _name, _value in CPU_KERNELS["avx2"].items():
    os.environ.setdefault(_name, _value)

TINY_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def tiny_hub() -> dict[str, Path]:
    """Tiny gpt2, opt-125m and pythia-160m stand-ins in the hub cache, keyed by registry LM name."""
    hub = Path(os.environ["HF_HUB_CACHE"])
    return {
        key: write_tiny_hub_model(hub, repo, family, TINY_COMMIT)
        for key, repo, family in [
            ("gpt2", "openai-community/gpt2", "gpt2"),
            ("opt-125m", "facebook/opt-125m", "opt"),
            ("pythia-160m", "EleutherAI/pythia-160m", "gpt_neox"),
        ]
    }


@pytest.fixture
def fast_recipe() -> list[str]:
    """--set overrides that make any recipe train in a second on the tiny-shapes captions."""
    return ["steps=4", "batch_size=4", "image_size=32", "save_every=2", "train_data=tiny-shapes"]


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory):
    """A harness home of the test module's own: HARNESS_HOME names it for every test of the module that asks."""
    path = tmp_path_factory.mktemp("module-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HOME", str(path))
        yield path
