"""The real offline LM: SmolLM2-135M from its PyPI package, converted once and cached."""

from __future__ import annotations

import pytest

from harness import paths, registry
from harness.models import lms


@pytest.fixture(scope="module")
def smollm2():
    return lms.resolve(registry.LMS.get("smollm2-135m"))


def test_smollm2_loads_from_its_package_and_generates(smollm2):
    assert smollm2.identity.startswith("gguf-sha256:") and smollm2.gguf_file.endswith(".gguf")
    model, tokenizer = lms.load(smollm2)
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1] :])
    assert next(model.parameters()).dtype.is_floating_point and model.to(dtype=model.dtype) is model


def test_second_load_uses_the_converted_cache_not_the_gguf(smollm2, monkeypatch):
    lms.load(smollm2)  # converts on first use in this harness home (or finds it)
    cached = list((paths.home() / "lms").glob("smollm2-135m-*/model.safetensors"))
    assert len(cached) == 1
    from transformers import AutoModelForCausalLM

    calls = []
    real = AutoModelForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        calls.append(kwargs.get("gguf_file"))
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    model, _ = lms.load(smollm2)
    assert calls == [None]  # one plain safetensors load, no GGUF de-quantizing
    assert model.config.model_type == "llama" and model.config.hidden_size == 576
