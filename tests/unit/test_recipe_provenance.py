"""Recipe provenance (`registry.recipe_provenance`, `harness show --recipe`, `harness list recipes --diff`): each
field with the file, --set or default it came from, a caption-only field not carried over to question training,
the parameter groups' learning rates, and the bad values of the new fields."""

from __future__ import annotations

import pytest

from harness import registry
from harness.cli.main import main
from harness.config import parse_overrides
from tests.robustness.conftest import cli_error

RECIPES = "harness/catalog/recipes"


@pytest.fixture
def user_recipes(tmp_path, monkeypatch):
    """A folder of the user's own recipes (HARNESS_RECIPES_PATH), the registry read again around the test."""
    monkeypatch.setenv("HARNESS_RECIPES_PATH", str(tmp_path))
    registry._load.cache_clear()
    yield tmp_path
    registry._load.cache_clear()


def _from(origin: str) -> str:
    return origin.replace(str(registry.CATALOG.parent.parent) + "/", "")


def test_each_field_says_where_it_came_from():
    fields = registry.recipe_provenance("smollm2-135m-supervised")
    assert set(fields) == set(registry.RECIPES.get("supervised").__dataclass_fields__)
    assert _from(fields["train_text"][1]) == f"{RECIPES}/supervised.yaml" and fields["train_text"][0] == "vqa"
    assert (fields["lr"][0], _from(fields["lr"][1])) == (3e-4, f"{RECIPES}/frozen.yaml")  # through base: frozen
    assert fields["weight_decay"] == (0.0, registry.DEFAULT) and fields["lr_lm"] == (None, registry.DEFAULT)
    assert fields["question_types"] == (("color", "shape"), fields["train_text"][1])
    # The same with a model name or the recipe's name, and the same recipe the registry and a resolve give.
    assert registry.recipe_provenance("supervised") == fields
    assert registry.resolve_recipe("supervised", {"steps": 480}) == registry.RECIPES.get("supervised")
    assert (fields["steps"][0], _from(fields["steps"][1])) == (
        480,
        f"{RECIPES}/supervised.yaml",
    )  # its own, not frozen's
    moved = registry.recipe_provenance("frozen", {"steps": 7})
    assert moved["steps"] == (7, registry.SET) and moved["n_prefix"][1].endswith("frozen.yaml")


def test_the_embedding_loss_is_not_inherited_by_question_training():
    assert registry.RECIPES.get("frozen").aux_embed == 1.0
    value, origin = registry.recipe_provenance("supervised")["aux_embed"]
    assert value == 0.0 and registry.RECIPES.get("supervised").aux_embed == 0.0
    assert _from(origin) == (f"dropped: aux_embed 1.0 of {RECIPES}/frozen.yaml is for caption targets, and "
                             f"{RECIPES}/supervised.yaml sets train_text: vqa")  # fmt: skip
    # Set explicitly by --set, it stays; question training asked by --set drops frozen's own.
    assert registry.recipe_provenance("supervised", {"aux_embed": 0.5})["aux_embed"] == (0.5, registry.SET)
    assert registry.resolve_recipe("frozen", {"train_text": "vqa"}).aux_embed == 0.0
    assert "--set sets train_text: vqa" in registry.recipe_provenance("frozen", {"train_text": "vqa"})["aux_embed"][1]
    # Back on captions, supervised is frozen again, embedding loss included.
    back = registry.resolve_recipe("supervised", {"train_text": "captions", "question_types": []})
    assert back.aux_embed == 1.0


def test_a_user_recipe_keeps_the_embedding_loss_it_sets_itself(user_recipes):
    (user_recipes / "qa-embed.yaml").write_text("base: supervised\ndescription: mine\naux_embed: 0.3\n")
    (user_recipes / "qa-plain.yaml").write_text("base: supervised\ndescription: mine\nsteps: 300\n")
    (user_recipes / "qa-own.yaml").write_text("base: frozen\ndescription: mine\ntrain_text: vqa\naux_embed: 2.0\n")
    assert registry.RECIPES.get("qa-embed").aux_embed == 0.3
    assert registry.recipe_provenance("qa-embed")["aux_embed"] == (0.3, str(user_recipes / "qa-embed.yaml"))
    assert registry.RECIPES.get("qa-plain").aux_embed == 0.0
    assert registry.RECIPES.get("qa-own").aux_embed == 2.0  # set in the file that sets train_text


def test_show_recipe_of_supervised_shows_no_embedding_loss_and_every_origin(capsys):
    assert main(["show", "--recipe", "smollm2-135m-supervised"]) == 0
    out = capsys.readouterr().out
    rows = {cells[0]: cells[1:] for line in out.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}  # fmt: skip
    assert rows["train_text"] == ["vqa", f"{RECIPES}/supervised.yaml"]
    assert rows["lr"] == ["0.0003", f"{RECIPES}/frozen.yaml"]
    assert rows["aux_embed"][0] == "0.0" and rows["aux_embed"][1].startswith("dropped: aux_embed 1.0")
    assert rows["warmup_steps"] == ["0", "default"] and rows["question_types"][0] == "[color, shape]"
    assert "embedding loss: none (aux_embed 0: dropped" in out
    assert rows["encoder"][:3] == ["yes", "3,371,008", "0.0003"]  # the parameter groups' table
    assert rows["lm"][0] == "no (frozen)" and rows["lm"][2] == "-"


def test_show_recipe_of_finetuned_puts_only_the_lm_at_its_own_rate(capsys):
    assert main(["show", "--recipe", "smollm2-135m-finetuned"]) == 0
    out = capsys.readouterr().out
    groups = {cells[0]: cells for line in out.splitlines() if line.startswith(("| encoder", "| map", "| lm "))
              for cells in [[c.strip() for c in line.strip("|").split("|")]]}  # fmt: skip
    assert groups["encoder"][3] == groups["map"][3] == "0.0003" and groups["lm"][3] == "1e-05"
    assert groups["encoder"][4] == groups["map"][4] == f"lr ({RECIPES}/frozen.yaml)"
    assert groups["lm"][4] == f"{RECIPES}/finetuned.yaml"
    assert "embedding loss: weight 1.0 on caption targets" in out
    assert main(["show", "--recipe", "finetuned", "--set", "lr_encoder=1e-4"]) == 0
    out = capsys.readouterr().out
    encoder = [line for line in out.splitlines() if line.startswith("| encoder")][-1]  # the groups table
    assert [c.strip() for c in encoder.strip("|").split("|")] == ["encoder", "yes", "3,371,008", "0.0001", "--set"]
    assert "name a model (<lm>-<recipe>) to count the LM" in out


def test_list_recipes_diff_prints_what_each_recipe_changes(capsys):
    assert main(["list", "recipes", "--diff", "frozen"]) == 0
    rows = {cells[0]: cells[1] for line in capsys.readouterr().out.splitlines()[2:]
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}  # fmt: skip
    assert rows == {
        "finetuned": "train_lm: no -> yes; lr_lm: unset: lr -> 1e-05",
        "frozen": "(itself)",
        "linear": "train_encoder: yes -> no",
        "scratch": "train_lm: no -> yes; lm_init: pretrained -> random; lr_lm: unset: lr -> 1e-05",
        "supervised": "steps: 120 -> 480; aux_embed: 1.0 -> 0.0; train_text: captions -> vqa; question_types: [] -> [color, shape]",
        "train-blind": "train_images: real -> black; eval_images: real -> black",
    }
    assert main(["list", "recipes", "s*", "--diff", "finetuned"]) == 0
    out = capsys.readouterr().out
    assert "| scratch " in out and "lm_init: pretrained -> random" in out and "frozen" not in out.split("\n", 2)[2]


@pytest.mark.parametrize(
    "args, says",
    [
        (["show", "--recipe", "gpt2-frozen", "--set", "lr_vision=1"],
         "--set lr_vision: unknown parameter group 'vision' (the groups: lr_encoder, lr_map, lr_lm)"),
        (["show", "--recipe", "frozen", "--set", "lr=-1"], "invalid lr = -1.0 (more than 0)"),
        (["show", "--recipe", "finetuned", "--set", "lr_lm=-1e-5"], "invalid lr_lm = -1e-05 (more than 0 where"),
        (["show", "--recipe", "finetuned", "--set", "lr_map=0"], "invalid lr_map = 0.0"),
        (["show", "--recipe", "frozen", "--set", "lr_lm=1e-5"], "invalid lr_lm = 1e-05 (more than 0 where the part"),
        (["show", "--recipe", "linear", "--set", "lr_encoder=1e-3"], "invalid lr_encoder = 0.001"),
        (["show", "--recipe", "frozen", "--set", "question_types=[color]"],
         "invalid question_types = ('color',) (distinct type names, for train_text: vqa)"),
        (["show", "--recipe", "supervised", "--set", "question_types=[color, color]"], "invalid question_types"),
        (["show", "--recipe", "frozn"], "unknown"),
        (["show", "--recipe", "frozen", "--task", "easyvqa-tiny"], "show --recipe M stands alone"),
        (["list", "recipes", "--diff", "frozn"], "unknown recipe 'frozn'"),
        (["list", "lms", "--diff", "frozen"], "--diff compares recipes"),
    ],
)  # fmt: skip
def test_bad_values_are_one_line_and_exit_2(capsys, args, says):
    assert says in cli_error(capsys, args)


def test_a_group_rate_left_unset_is_lr():
    recipe = registry.resolve_recipe("finetuned", parse_overrides(["lr=1e-3"]))
    assert [recipe.group_lr(g) for g in ("encoder", "map", "lm")] == [1e-3, 1e-3, 1e-5]
    recipe = registry.resolve_recipe("finetuned", parse_overrides(["lr_lm=null", "lr_map=2e-3"]))
    assert [recipe.group_lr(g) for g in ("encoder", "map", "lm")] == [3e-4, 2e-3, 3e-4]
