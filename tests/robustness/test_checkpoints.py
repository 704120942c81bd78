"""Checkpoints as untrusted files: safetensors only, a content sha256 written at save and checked at
load, so a changed byte anywhere or a truncated file is refused in one line naming the file, and a
checkpoint made for another model fingerprint is refused, never used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from harness.errors import HarnessError
from harness.training import checkpoint
from tests.robustness.conftest import one_line

FINGERPRINT = "0123456789abcdef"


def small_checkpoint(step: int = 3) -> checkpoint.Checkpoint:
    torch.manual_seed(0)
    model = {
        "prefix_map.weight": torch.randn(6, 4),
        "prefix_map.bias": torch.randn(6),
        "encoder.bn.num_batches_tracked": torch.tensor(7),
        "encoder.half": torch.randn(3).to(torch.bfloat16),
        "encoder.empty": torch.zeros(0, 4),
    }
    optimizer = {"prefix_map.weight/exp_avg": torch.randn(6, 4), "prefix_map.weight/step": torch.tensor(3.0)}
    meta = {"fingerprint": FINGERPRINT, "model": {"name": "gpt2-frozen", "recipe": {"steps": 3}}}
    return checkpoint.Checkpoint(step, model, optimizer, torch.get_rng_state(), meta)


@pytest.fixture
def saved(tmp_path) -> Path:
    return checkpoint.save(tmp_path / "ckpt", small_checkpoint())


def refused(folder: Path, fingerprint: str = FINGERPRINT) -> str:
    with pytest.raises(HarnessError) as excinfo:
        checkpoint.load(folder, fingerprint)
    message = one_line(excinfo)
    assert message.startswith(str(folder / checkpoint.FILENAME) + ": "), message
    return message


def test_round_trip_is_exact(saved):
    back = checkpoint.load(saved.parent, FINGERPRINT)
    original = small_checkpoint()
    assert back.step == 3 and back.meta == original.meta
    for key, value in original.model.items():
        assert back.model[key].dtype == value.dtype and torch.equal(back.model[key], value)
    assert torch.equal(back.rng, original.rng) and set(back.optimizer) == set(original.optimizer)


def test_no_checkpoint_is_none(tmp_path):
    assert checkpoint.load(tmp_path / "nothing", FINGERPRINT) is None


def test_another_models_checkpoint_is_refused(saved):
    message = refused(saved.parent, "fedcba9876543210")
    assert f"checkpoint fingerprint {FINGERPRINT} does not match the requested model fedcba9876543210" in message


def test_a_flipped_byte_in_tensor_data_is_refused(saved):
    data = bytearray(saved.read_bytes())
    data[-5] ^= 0x01  # inside the last tensor's bytes: safetensors alone cannot see this
    saved.write_bytes(bytes(data))
    assert "checkpoint content does not match its sha256" in refused(saved.parent)


def test_edited_metadata_is_refused(saved):
    data = saved.read_bytes()
    edited = data.replace(b'"step":"3"', b'"step":"9"')
    assert edited != data and len(edited) == len(data)
    saved.write_bytes(edited)
    assert "does not match its sha256" in refused(saved.parent)


def test_a_fingerprint_edited_to_match_is_still_refused(saved):
    """Editing the recorded fingerprint to pass the model check breaks the hash."""
    data = saved.read_bytes()
    saved.write_bytes(data.replace(FINGERPRINT.encode(), b"fedcba9876543210"))
    assert "does not match its sha256" in refused(saved.parent, "fedcba9876543210")


@pytest.mark.parametrize("keep", [0, 7, 8, 100, -1, -200])
def test_a_truncated_checkpoint_is_refused(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:keep])  # a negative keep cuts off the end
    assert "unreadable checkpoint" in refused(saved.parent)


def test_garbage_and_pickles_are_refused(saved):
    import pickle

    saved.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    assert "unreadable checkpoint" in refused(saved.parent)
    saved.write_bytes(b"\xff" * 64)
    assert "unreadable checkpoint" in refused(saved.parent)


def test_a_safetensors_file_without_the_hash_is_refused(tmp_path):
    """A valid safetensors file not written by the harness (or by an older one): refused, not trusted."""
    folder = tmp_path / "foreign"
    folder.mkdir()
    tensors = {"model/prefix_map.weight": torch.zeros(2, 2), "rng": torch.get_rng_state()}
    save_file(tensors, folder / checkpoint.FILENAME, metadata={"fingerprint": json.dumps(FINGERPRINT), "step": "1"})
    assert "checkpoint has no content hash" in refused(folder)


def test_a_checkpoint_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "c" / checkpoint.FILENAME).mkdir(parents=True)
    assert "not a regular file" in refused(tmp_path / "c")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), bit=st.sampled_from([0x01, 0x02, 0x10, 0x80]))
def test_any_single_bit_flip_anywhere_is_refused(saved, position, bit):
    original = saved.read_bytes()
    data = bytearray(original)
    data[position % len(data)] ^= bit
    saved.write_bytes(bytes(data))
    try:
        refused(saved.parent)
    finally:
        saved.write_bytes(original)
