"""Causal LMs by registry key: from the model hub, from a local folder, or from a GGUF file in a package.

A GGUF model loads through transformers (which de-quantizes it) and is then saved as a plain float
model under ``$HARNESS_HOME/lms`` keyed by the file's sha256: transformers flags GGUF-loaded models as
quantized and refuses ``.to(dtype)``, and the conversion takes seconds where the cached copy loads at once
(docs/speed.md).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from harness import paths
from harness.config import LMSpec
from harness.errors import HarnessError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedLM:
    """Where an LM's files are on this machine, and the identity that goes into fingerprints."""

    spec: LMSpec
    folder: Path
    gguf_file: str  # "" unless the folder holds a GGUF file still to convert
    identity: str


def resolve(spec: LMSpec, local_path: str | None = None) -> ResolvedLM:
    """Find the LM's files without loading them (cheap), or raise a one-line HarnessError."""
    if local_path:
        folder = Path(local_path)
        if not (folder / "config.json").is_file():
            raise HarnessError(f"--lm-path {folder}: no config.json there (expected a saved transformers model)")
        weights = sorted(p for p in folder.iterdir() if p.suffix == ".safetensors")
        digests = [paths.file_sha256(p) for p in [folder / "config.json", *weights]]
        return ResolvedLM(spec, folder, "", f"local:{paths.fingerprint(digests)}")
    if spec.source == "hub":
        return _resolve_hub(spec)
    if spec.source == "gguf":
        gguf = _locate_gguf(spec)
        return ResolvedLM(spec, gguf.parent, gguf.name, f"gguf-sha256:{paths.file_sha256(gguf)}")
    raise HarnessError(f"LM '{spec.key}': unknown source '{spec.source}' (expected hub or gguf)")


def _resolve_hub(spec: LMSpec) -> ResolvedLM:
    folder = hub_snapshot(
        spec.hub_id, spec.revision, f"LM '{spec.key}'", "--lm-path DIR (a folder saved by save_pretrained)"
    )
    return ResolvedLM(spec, folder, "", f"hub:{spec.hub_id}@{folder.name}")


HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]


def hub_snapshot(repo_id: str, revision: str | None, what: str, alternative: str) -> Path:
    """The local snapshot folder of a hub model (downloaded unless HF_HUB_OFFLINE), named by its commit;
    one line when it is neither here nor reachable, or holds no safetensors weights."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES, local_files_only=offline))
    except HFValidationError as exc:
        raise HarnessError(f"{what}: invalid hub id '{repo_id}' ({exc})") from None
    except Exception as exc:  # connection errors come in many types; all mean "not here, not reachable"
        log.debug("hub download failed: %r", exc)
        raise HarnessError(_not_here(repo_id, revision, what, alternative)) from None
    if not any(folder.glob("*.safetensors")):
        raise HarnessError(f"{what}: {folder} has no safetensors weights (pickled .bin files are not loaded)")
    return folder


def _not_here(repo_id: str, revision: str | None, what: str, alternative: str) -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    return (
        f"{what} ({repo_id}@{revision or 'main'}) is not on this machine and the model hub cannot be "
        f"reached: download it where there is network (`hf download {repo_id}`) and copy it into the "
        f"hub cache ({HF_HUB_CACHE}), or pass {alternative}"
    )


def hub_missing(repo_id: str, revision: str | None, what: str, alternative: str) -> list[str]:
    """What ``hub_snapshot`` would find missing, without downloading: nothing when the model is in the hub cache
    with safetensors weights or the hub answers now (it is downloaded on first use), else one line."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - an invalid id: resolving it says so in one line
        return []
    if isinstance(cached, str):
        folder = Path(cached).parent
        if any(folder.glob("*.safetensors")):
            return []
        return [f"{what}: {folder} has no safetensors weights (pickled .bin files are not loaded)"]
    return [] if hub_reachable() else [_not_here(repo_id, revision, what, alternative)]


def hub_reachable() -> bool:
    """Whether the model hub can be reached now (HF_HUB_OFFLINE: no); asked once per process, for 3 s at most."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("1", "true", "yes") and _hub_answers()


@functools.lru_cache(maxsize=1)
def _hub_answers() -> bool:
    import urllib.error
    import urllib.request

    from huggingface_hub.constants import ENDPOINT

    try:
        urllib.request.urlopen(urllib.request.Request(ENDPOINT, method="HEAD"), timeout=3).close()
    except urllib.error.HTTPError:
        return True  # it answered
    except (OSError, ValueError):
        return False
    return True


def _locate_gguf(spec: LMSpec) -> Path:
    how, _, arg = spec.locate.partition(":")
    missing = HarnessError(f"LM '{spec.key}' is not installed: run `{spec.install}`")
    if how == "module":
        found = importlib.util.find_spec(arg)
        if found is None or not found.submodule_search_locations:
            raise missing
        path = Path(found.submodule_search_locations[0]) / spec.gguf_file
    elif how == "assemble":
        path = paths.subdir("gguf") / spec.gguf_file
        if not path.exists():
            try:
                module = importlib.import_module(arg)
            except ImportError:
                raise missing from None
            log.info("assembling %s from its part packages (checksum verified by the package)", path.name)
            module.assemble(output_path=str(path))
    elif how == "parts":
        name, _, count = arg.partition(":")
        path = paths.subdir("gguf") / spec.gguf_file
        if not path.exists():
            try:
                parts = [Path(importlib.import_module(f"{name}{i}").get_part_path()) for i in range(1, int(count) + 1)]
            except ImportError:
                raise missing from None
            tmp = path.with_suffix(".partial")
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out)
            os.replace(tmp, path)
    else:
        raise HarnessError(f"LM '{spec.key}': unknown locate rule '{spec.locate}'")
    if not path.is_file():
        raise missing
    return path


def load(resolved: ResolvedLM, random_init: bool = False, seed: int = 0, device_map: str | dict | None = None):
    """Load (model, tokenizer) in float32 on the CPU. ``random_init`` keeps the architecture only.

    ``device_map`` (accelerate's: "auto", "balanced", "sequential" or module -> device) loads the LM
    split over the GPUs (then in bf16), the CPU and disk, for LMs that do not fit one device.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = _converted_folder(resolved) if resolved.gguf_file else resolved.folder
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if device_map is not None:
        if random_init:
            raise HarnessError(
                f"LM '{resolved.spec.key}': a randomly initialised LM cannot be loaded split (--lm-device-map)"
            )
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        try:
            model = AutoModelForCausalLM.from_pretrained(
                folder,
                dtype=dtype,
                device_map=device_map,
                offload_folder=str(paths.subdir("offload") / resolved.spec.key),
            )
        except (ValueError, KeyError, RuntimeError) as err:
            raise HarnessError(f"--lm-device-map: {str(err).splitlines()[0]}") from None
    elif random_init:
        config = AutoConfig.from_pretrained(folder)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _converted_folder(resolved: ResolvedLM) -> Path:
    """The plain safetensors copy of a GGUF model, made on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    digest = resolved.identity.rsplit(":", 1)[1]
    target = paths.subdir("lms") / f"{resolved.spec.key}-{digest[:16]}"
    if (target / "config.json").is_file():
        return target
    log.info("converting %s to a plain safetensors copy (once): %s", resolved.gguf_file, target)
    with _gguf_parsed_once():
        quantized = AutoModelForCausalLM.from_pretrained(resolved.folder, gguf_file=resolved.gguf_file)
        tokenizer = AutoTokenizer.from_pretrained(resolved.folder, gguf_file=resolved.gguf_file)
    # The weights are de-quantized float32 already: only the GGUF flags go, so that the saved copy is a
    # plain model (the copy's tensors and config.json are those of one rebuilt from the config).
    quantized.hf_quantizer = None
    if hasattr(quantized.config, "quantization_config"):
        del quantized.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    quantized.to(torch.float32).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, target)
    return target


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """While converting, the GGUF file is parsed once and gguf's tensor-name map built once per architecture.

    transformers (5.x) parses the whole file (a pure-Python read of every metadata field, the 49k-entry
    vocabulary included) for the config, again for the weights and again for the tokenizer, and builds
    gguf's ``TensorNameMap`` once per submodule (hundreds of times). Its
    functions import ``GGUFReader`` and ``get_tensor_name_map`` from ``gguf`` when called, so memoising
    the two names of the ``gguf`` module for the duration of the conversion removes the repeats without
    touching transformers; the weights and tokenizer come out the same (a test compares them).
    """
    import gguf

    original_reader, original_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple, object] = {}

    def reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = original_reader(path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(original_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_map
        readers.clear()


def availability(spec: LMSpec) -> str:
    """'yes' if the LM can load on this machine now, else what is missing (cheap: reads no weights)."""
    if spec.source == "gguf":
        how, _, arg = spec.locate.partition(":")
        module = arg.partition(":")[0] + ("1" if how == "parts" else "")
        if (paths.home() / "gguf" / spec.gguf_file).is_file() or importlib.util.find_spec(module) is not None:
            return "yes"
        return f"no: {spec.install}"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(spec.hub_id, "config.json", revision=spec.revision)
    return "yes (hub cache)" if isinstance(cached, str) else "needs the model hub (or --lm-path)"


def missing(spec: LMSpec, local_path: str | None = None) -> list[str]:
    """What loading the LM would find missing (``resolve``'s checks, cheap: reads no weights), one line each."""
    if local_path:
        folder = Path(local_path)
        if not (folder / "config.json").is_file():
            return [f"--lm-path {folder}: no config.json there (expected a saved transformers model)"]
        return []
    if spec.source == "gguf":
        return [] if availability(spec) == "yes" else [f"LM '{spec.key}' is not installed: run `{spec.install}`"]
    if spec.source == "hub":
        return hub_missing(spec.hub_id, spec.revision, f"LM '{spec.key}'", "--lm-path DIR (a folder saved by "
                           "save_pretrained)")  # fmt: skip
    return [f"LM '{spec.key}': unknown source '{spec.source}' (expected hub or gguf)"]
