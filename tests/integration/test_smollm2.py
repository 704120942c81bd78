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


@pytest.mark.slow
def test_the_converted_copy_is_what_transformers_loads_from_the_gguf(smollm2):
    """The conversion parses the GGUF once (``_gguf_parsed_once``) and saves the de-quantized model as it
    is; its tensors, config and tokenizer must equal transformers' own, unpatched GGUF load."""
    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = lms.load(smollm2)  # the copy (converted in this home on first use)
    assert gguf.GGUFReader.__name__ == "GGUFReader" and not hasattr(gguf.get_tensor_name_map, "cache_info")
    direct = AutoModelForCausalLM.from_pretrained(smollm2.folder, gguf_file=smollm2.gguf_file)
    direct_tokenizer = AutoTokenizer.from_pretrained(smollm2.folder, gguf_file=smollm2.gguf_file)
    ours, theirs = model.state_dict(), direct.state_dict()
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    ours_config, theirs_config = model.config.to_dict(), direct.config.to_dict()
    differ = {k for k in set(ours_config) | set(theirs_config) if ours_config.get(k) != theirs_config.get(k)}
    assert differ == {"architectures", "_name_or_path", "quantization_config"}  # the GGUF flag goes; the rest stays
    assert ours_config.get("quantization_config") is None and ours_config["architectures"] == ["LlamaForCausalLM"]
    text = "A blue circle.\nQuestion: what color is the shape? Answer: blue"
    assert tokenizer(text).input_ids == direct_tokenizer(text).input_ids
    assert tokenizer.eos_token_id == direct_tokenizer.eos_token_id
