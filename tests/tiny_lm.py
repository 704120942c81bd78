"""Tiny randomly initialised causal LMs with a real BPE tokenizer, written in the model hub's layout."""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = [
    "Question: what color is the shape? Answer: red",
    "a blue circle. a red triangle. a green rectangle. a yellow circle. a teal triangle.",
    "a brown rectangle. a gray circle. a black triangle. yes no. This is a dax.",
    "is there a circle? does the image contain a triangle? what shape is in the image?",
]


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def tiny_model(family: str, vocab_size: int, seed: int = 0):
    from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, LlamaConfig, OPTConfig

    eos = 0
    configs = {
        "gpt2": GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=256, vocab_size=vocab_size,
                           bos_token_id=eos, eos_token_id=eos),
        "opt": OPTConfig(num_hidden_layers=2, hidden_size=32, ffn_dim=64, num_attention_heads=2, vocab_size=vocab_size,
                         word_embed_proj_dim=32, max_position_embeddings=256, bos_token_id=eos, eos_token_id=eos,
                         pad_token_id=eos),
        "gpt_neox": GPTNeoXConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                                  vocab_size=vocab_size, max_position_embeddings=256, bos_token_id=eos, eos_token_id=eos),
        "llama": LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                             num_key_value_heads=1, vocab_size=vocab_size, max_position_embeddings=256,
                             bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=True),
    }  # fmt: skip
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(configs[family])


def write_tiny_hub_model(hub_cache: Path, repo_id: str, family: str, commit: str) -> Path:
    """Write a tiny model + tokenizer as the hub cache stores ``repo_id`` at ``commit`` (refs/main too)."""
    repo_dir = hub_cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    if not (snapshot / "config.json").exists():
        tokenizer = tiny_tokenizer()
        model = tiny_model(
            family, len(tokenizer), seed=1234
        )  # not any recipe seed: "pretrained" must differ from a fresh init
        model.save_pretrained(snapshot)
        tokenizer.save_pretrained(snapshot)
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def write_tiny_llava(folder: Path, max_positions: int = 512, seed: int = 0) -> Path:
    """A tiny randomly initialised LLaVA (CLIP vision tower, Llama LM) and its processor, saved as
    ``save_pretrained`` writes them: what ``AutoModelForImageTextToText`` and ``AutoProcessor`` load."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    if (folder / "config.json").exists():
        return folder
    tokenizer = tiny_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)  # fmt: skip
    text = LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                       num_key_value_heads=1, vocab_size=len(tokenizer), max_position_embeddings=max_positions,
                       bos_token_id=0, eos_token_id=0, pad_token_id=0)  # fmt: skip
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-1, vision_feature_select_strategy="default")  # fmt: skip
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=8, image_token="<image>",
                               vision_feature_select_strategy="default", num_additional_image_tokens=1)  # fmt: skip
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
