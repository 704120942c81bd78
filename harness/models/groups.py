"""Parameter groups and what a recipe resolves to.

A visual-prefix model trains in up to three parts, each an optimizer group at its own learning rate: the image
encoder (``lr_encoder``), the prefix map (``lr_map``) and the LM (``lr_lm``); a rate left unset is the recipe's
``lr``, and the schedule (warmup, cosine) scales every group alike. Parameter counts come from the model's
configuration built on the meta device (no weights read): `harness show --recipe`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness import paths, registry
from harness.config import GROUPS, Recipe
from harness.errors import HarnessError

if TYPE_CHECKING:
    import torch

    from harness.config import EncoderSpec, LMSpec

# The model's attribute each group trains.
MODULES = {"encoder": "encoder", "map": "prefix_map", "lm": "lm"}


def trained(recipe: Recipe) -> list[str]:
    """The groups the recipe trains, in order: the encoder (unless frozen), the map (always), the LM (if trained)."""
    return [g for g, on in zip(GROUPS, (recipe.train_encoder, True, recipe.train_lm)) if on]


def optimizer_groups(params: dict[str, torch.nn.Parameter], recipe: Recipe) -> list[dict[str, Any]]:
    """One optimizer parameter group per trained part, ``{"name", "params", "lr"}``: every trained parameter
    (``params``, by name) in the group of its part, in ``params``' order."""
    groups = []
    for group in trained(recipe):
        prefix = MODULES[group] + "."
        groups.append({"name": group, "params": [p for n, p in params.items() if n.startswith(prefix)],
                       "lr": recipe.group_lr(group)})  # fmt: skip
    grouped = sum(len(g["params"]) for g in groups)
    if grouped != len(params):
        stray = [n for n in params if not any(n.startswith(MODULES[g] + ".") for g in trained(recipe))]
        raise HarnessError(f"trained parameters outside every parameter group: {', '.join(stray[:3])}")
    return groups


def record(groups: list[dict[str, Any]], recipe: Recipe) -> dict[str, dict[str, Any]]:
    """What a checkpoint records of its groups: each one's learning rate and parameter count."""
    return {g["name"]: {"lr": recipe.group_lr(g["name"]), "params": sum(p.numel() for p in g["params"])}
            for g in groups}  # fmt: skip


def count(lm: LMSpec | None, encoder: EncoderSpec, recipe: Recipe) -> tuple[dict[str, int | None], str]:
    """Parameters of each part built from its configuration on the meta device, no weights read: ({group: count
    or None where unknown}, a note on how they were counted or why one is unknown)."""
    import torch

    notes = []
    try:
        with torch.device("meta"):
            built = _encoder_features(encoder)
    except Exception as exc:  # noqa: BLE001 - a timm name the installed timm lacks: counted as unknown
        built, counts = None, {"encoder": None}
        notes.append(f"the encoder could not be built from its configuration ({str(exc).splitlines()[0]})")
    else:
        counts = {"encoder": built[1]}
    config, why = _lm_config(lm) if lm is not None else (None, "name a model (<lm>-<recipe>) to count the LM")
    counts["lm"] = counts["map"] = None
    if config is None:
        notes.append(why)
    else:
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        counts["lm"] = sum(p.numel() for p in model.parameters())
        width = model.get_input_embeddings().weight.shape[1]
        if built is not None:
            counts["map"] = built[0] * recipe.n_prefix * width + recipe.n_prefix * width
        notes.insert(0, f"counted from the configurations ({why}), on the meta device: no weights read")
    return {g: counts[g] for g in GROUPS}, "; ".join(notes)


def _encoder_features(spec: EncoderSpec) -> tuple[int, int]:
    """(pooled feature width, parameter count) of the encoder, built by timm without pretrained weights."""
    import timm

    model = timm.create_model(spec.timm_name, pretrained=False, num_classes=0)
    return model.num_features, sum(p.numel() for p in model.parameters())


def _lm_config(spec: LMSpec) -> tuple[Any, str]:
    """(transformers config of the LM, where it was read) without reading weights, or (None, why not)."""
    from transformers import AutoConfig

    from harness.models import lms

    missing = lms.missing(spec)
    if missing:
        return None, f"the LM is not on this machine, so the LM and map are not counted ({missing[0]})"
    if spec.source == "hub":
        folder = lms.resolve(spec).folder
        return AutoConfig.from_pretrained(folder), f"{spec.key}: {folder / 'config.json'}"
    converted = sorted((paths.home() / "lms").glob(f"{spec.key}-*/config.json"))
    if converted:
        return AutoConfig.from_pretrained(converted[-1].parent), f"{spec.key}: {converted[-1]}"
    path = lms._locate_gguf(spec)
    return AutoConfig.from_pretrained(path.parent, gguf_file=path.name), f"{spec.key}: the metadata of {path.name}"


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if value is None:
        return "unset: lr"
    if isinstance(value, str) and value != value.strip():
        return repr(value)
    return "yes" if value is True else "no" if value is False else str(value)


def _short(origin: str) -> str:
    """An origin with the package's own folder written relative to the repository (harness/catalog/...)."""
    return origin.replace(str(registry.CATALOG.parent.parent) + "/", "")


def show(name: str, overrides: dict[str, Any]) -> str:
    """`harness show --recipe`: every field of the resolved recipe with where it came from, the embedding loss,
    and each parameter group's trainable parameters and learning rate."""
    from tabulate import tabulate

    fields = registry.recipe_provenance(name, overrides)
    recipe = Recipe(**{k: v for k, (v, _) in fields.items()})
    lm = None if name in registry.RECIPES.claimed() else registry.parse_model_name(name).lm
    title = f"recipe {recipe.name}" + (f" of model {name}" if lm is not None else "")
    rows = [[k, _shown(v), _short(origin)] for k, (v, origin) in fields.items()]
    out = [f"{title}: every field and where it comes from (a recipe file, its base: chain, --set or the default)",
           tabulate(rows, headers=["field", "value", "from"], tablefmt="github"), ""]  # fmt: skip
    aux, aux_from = fields["aux_embed"]
    if aux:
        out.append(f"embedding loss: weight {aux} on caption targets ({_short(aux_from)})")
    else:
        out.append(f"embedding loss: none (aux_embed 0: {_short(aux_from)})")
    if recipe.question_types:
        out.append(f"training questions: only of the types {', '.join(recipe.question_types)}")
    counts, note = count(lm, registry.ENCODERS.get(recipe.encoder), recipe)
    groups = []
    for group in GROUPS:
        on = group in trained(recipe)
        own, own_from = fields[f"lr_{group}"]
        origin = _short(own_from) if own is not None else f"lr ({_short(fields['lr'][1])})"
        n = counts[group]
        groups.append([group, "yes" if on else "no (frozen)", "unknown" if n is None else f"{n:,}",
                       str(recipe.group_lr(group)) if on else "-", origin if on else ""])  # fmt: skip
    trainable = [counts[g] for g in trained(recipe)]
    total = "unknown" if None in trainable else f"{sum(trainable):,}"
    out += [
        "",
        f"parameter groups ({total} trainable parameters; {note}):",
        tabulate(groups, headers=["group", "trains", "parameters", "learning rate", "from"], tablefmt="github"),
    ]
    return "\n".join(out)


def diff(base: str, pattern: str = "*") -> str:
    """`harness list recipes --diff BASE`: for each recipe, the fields whose value differs from BASE's."""
    from tabulate import tabulate

    reference = registry.RECIPES.get(base)
    rows = []
    for name in registry.RECIPES.names(pattern):
        recipe = registry.RECIPES.get(name)
        changed = [f"{k}: {_shown(getattr(reference, k))} -> {_shown(getattr(recipe, k))}"
                   for k in Recipe.__dataclass_fields__ if k not in ("name", "description")
                   and getattr(recipe, k) != getattr(reference, k)]  # fmt: skip
        rows.append([name, "; ".join(changed) if changed else ("(itself)" if name == base else "nothing")])
    return tabulate(rows, headers=["recipe", f"changes from {base}"], tablefmt="github")
