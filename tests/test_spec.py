"""The run spec: malformed specs are rejected naming the file and the field; good ones load typed."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from babysit.errors import BabysitWarning
from babysit.spec import PRESETS_DIR, Spec, SpecError, load_spec
from babysit.train.optim import milestone_steps

PRESET_PATHS = sorted(PRESETS_DIR.glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rejected(path: Path, overrides: list[str] | None = None) -> str:
    """Load a spec that must fail; return the message after checking it names the file."""
    with pytest.raises(SpecError) as info:
        load_spec(path, overrides)
    message = str(info.value)
    assert str(path) in message, f"message does not name the file:\n{message}"
    return message


# --- malformed specs -----------------------------------------------------------------------------

def test_misspelt_key_is_unknown_and_named_with_its_section(tmp_path):
    msg = rejected(write(tmp_path, "optim: {lrr: 0.1}\ntrain: {steps: 10}\n"))
    assert "optim.lrr" in msg
    assert "unknown key" in msg


def test_misspelt_top_level_section_is_unknown(tmp_path):
    msg = rejected(write(tmp_path, "optimizer: {lr: 0.1}\n"))
    assert re.search(r"(?:^\s*|\.yaml: )optimizer: unknown key", msg, re.M), msg


def test_wrong_type_names_field_and_bad_value(tmp_path):
    msg = rejected(write(tmp_path, "train: {steps: 10, batch_size: abc}\n"))
    assert "train.batch_size" in msg
    assert "'abc'" in msg
    assert "'full'" in msg  # says what else it could have been


def test_fractional_steps_rejected(tmp_path):
    msg = rejected(write(tmp_path, "train: {steps: 1.5}\n"))
    assert "train.steps" in msg
    assert "1.5" in msg


def test_negative_lr_names_field_and_value(tmp_path):
    msg = rejected(write(tmp_path, "optim: {lr: -0.1}\ntrain: {steps: 10}\n"))
    assert "optim.lr" in msg
    assert "greater than 0" in msg
    assert "-0.1" in msg


def test_zero_lr_rejected(tmp_path):
    msg = rejected(write(tmp_path, "optim: {lr: 0}\ntrain: {steps: 10}\n"))
    assert "optim.lr" in msg and "(got 0)" in msg


def test_batch_size_zero_rejected(tmp_path):
    msg = rejected(write(tmp_path, "train: {steps: 10, batch_size: 0}\n"))
    assert re.search(r"(?:^\s*|\.yaml: )train.batch_size: must be >= 1", msg, re.M), msg
    assert "got 0" in msg


def test_a_milestone_at_the_last_step_is_dropped_with_a_warning(tmp_path):
    with pytest.warns(BabysitWarning, match=r"schedule.milestones \[100\] .*train.steps = 100.*dropped"):
        spec = load_spec(write(tmp_path, "schedule: {name: step, milestones: [50, 100]}\ntrain: {steps: 100}\n"))
    assert milestone_steps(spec.schedule, 100) == [50]  # only the late one goes, not 50


def test_a_shortened_run_keeps_its_spec_and_fractions_follow_it():
    with pytest.warns(BabysitWarning, match=r"schedule.milestones \[100000\] .*train.steps = 2000"):
        spec = load_spec("makemore-bn", ["train.steps=2000", "schedule.milestones=[100000]"])
    assert milestone_steps(spec.schedule, 2000) == []
    assert milestone_steps(load_spec("makemore-bn", ["train.steps=2000"]).schedule, 2000) == [1000]  # preset: [0.5]


@pytest.mark.parametrize("milestones", ["[0.5, 100]", "[1.5]"])
def test_milestones_are_fractions_or_step_numbers_not_both(tmp_path, milestones):
    msg = rejected(write(tmp_path, f"schedule: {{name: step, milestones: {milestones}}}\ntrain: {{steps: 1000}}\n"))
    assert "milestones" in msg and ("fractions" in msg)


def test_milestones_not_increasing_rejected(tmp_path):
    msg = rejected(write(tmp_path, "schedule: {name: step, milestones: [50, 20]}\ntrain: {steps: 100}\n"))
    assert re.search(r"(?:^\s*|\.yaml: )schedule: milestones must be positive and increasing", msg, re.M), msg
    assert "[50, 20]" in msg


def test_step_schedule_without_milestones_rejected(tmp_path):
    msg = rejected(write(tmp_path, "schedule: {name: step}\ntrain: {steps: 100}\n"))
    assert "schedule" in msg and "needs milestones" in msg


def test_warmup_at_last_step_rejected(tmp_path):
    msg = rejected(write(tmp_path, "schedule: {warmup_steps: 10}\ntrain: {steps: 10}\n"))
    assert "schedule.warmup_steps (10)" in msg and "train.steps (10)" in msg


def test_nesterov_without_momentum_rejected(tmp_path):
    msg = rejected(write(tmp_path, "optim: {name: sgd, nesterov: true}\ntrain: {steps: 10}\n"))
    assert re.search(r"(?:^\s*|\.yaml: )optim: nesterov needs momentum > 0", msg, re.M), msg


def test_nesterov_with_momentum_accepted(tmp_path):
    spec = load_spec(write(tmp_path, "optim: {name: sgd, nesterov: true, momentum: 0.9}\ntrain: {steps: 10}\n"))
    assert spec.optim.nesterov is True and spec.optim.momentum == 0.9


def test_split_not_summing_to_one_rejected(tmp_path):
    msg = rejected(write(tmp_path, "data: {split: [0.5, 0.3, 0.1]}\ntrain: {steps: 10}\n"))
    assert re.search(r"(?:^\s*|\.yaml: )data: split must be three non-negative fractions summing to 1", msg, re.M), msg
    assert "[0.5, 0.3, 0.1]" in msg


def test_split_without_val_part_rejected(tmp_path):
    msg = rejected(write(tmp_path, "data: {split: [0.9, 0.0, 0.1]}\ntrain: {steps: 10}\n"))
    assert "data" in msg and "non-empty train and val" in msg


def test_steps_and_epochs_both_set_rejected(tmp_path):
    msg = rejected(write(tmp_path, "train: {steps: 10, epochs: 2}\n"))
    assert "set train.steps or train.epochs, not both" in msg
    assert "got 10 and 2" in msg


def test_neither_steps_nor_epochs_rejected(tmp_path):
    msg = rejected(write(tmp_path, "train: {batch_size: 32}\n"))
    assert re.search(r"(?:^\s*|\.yaml: )train: set train.steps or train.epochs$", msg, re.M), msg


def test_top_level_list_rejected(tmp_path):
    msg = rejected(write(tmp_path, "- optim\n- train\n"))
    assert "top level must be a mapping" in msg
    assert "got list" in msg


def test_top_level_scalar_rejected(tmp_path):
    msg = rejected(write(tmp_path, "42\n"))
    assert "top level must be a mapping" in msg and "got int" in msg


def test_invalid_yaml_rejected(tmp_path):
    msg = rejected(write(tmp_path, "optim: {lr: 0.1\ntrain: [\n"))
    assert "not valid YAML" in msg
    assert "line 1" in msg  # the parser's position comes through


def test_lbfgs_needs_full_batch(tmp_path):
    msg = rejected(write(tmp_path, "optim: {name: lbfgs}\ntrain: {steps: 10, batch_size: 32}\n"))
    assert "lbfgs" in msg
    assert "train.batch_size: full" in msg


def test_lbfgs_with_full_batch_accepted(tmp_path):
    spec = load_spec(write(tmp_path, "optim: {name: lbfgs, lr: 1.0}\ntrain: {steps: 10, batch_size: full}\n"))
    assert spec.optim.name == "lbfgs" and spec.train.batch_size == "full"


def test_unknown_activation_lists_choices(tmp_path):
    msg = rejected(write(tmp_path, "model: {activation: swish}\ntrain: {steps: 10}\n"))
    assert "model.activation" in msg
    assert "'swish'" in msg
    for choice in ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu"):
        assert f"'{choice}'" in msg


def test_unknown_optimizer_lists_choices(tmp_path):
    msg = rejected(write(tmp_path, "optim: {name: adamax}\ntrain: {steps: 10}\n"))
    assert "optim.name" in msg and "'adamax'" in msg
    assert "'adam'" in msg and "'lbfgs'" in msg


@pytest.mark.parametrize("kind", ["arrays", "images"])
def test_user_data_kind_without_path_rejected(tmp_path, kind):
    msg = rejected(write(tmp_path, f"data: {{kind: {kind}}}\ntrain: {{steps: 10}}\n"))
    assert f"data.kind '{kind}' needs data.path" in msg


def test_nested_field_in_list_is_named_by_index(tmp_path):
    msg = rejected(write(tmp_path, "model: {hidden: [8, wide]}\ntrain: {steps: 10}\n"))
    assert "model.hidden.1" in msg and "'wide'" in msg


def test_nested_init_field_is_named(tmp_path):
    msg = rejected(write(tmp_path, "model: {init: {output: {weight: he}}}\ntrain: {steps: 10}\n"))
    assert "model.init.output.weight" in msg and "'he'" in msg


def test_names_data_with_cnn_rejected(tmp_path):
    msg = rejected(write(tmp_path, "data: {kind: names}\nmodel: {kind: cnn}\ntrain: {steps: 10}\n"))
    assert "names data needs model.kind 'mlp'" in msg and "'cnn'" in msg


def test_every_error_is_reported_at_once(tmp_path):
    msg = rejected(write(tmp_path, "optim: {lr: -1, lrr: 2}\nmodel: {activation: swish}\ntrain: {steps: 10}\n"))
    for where in ("optim.lr", "optim.lrr", "model.activation"):
        assert where in msg


def test_missing_spec_file_lists_presets(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(missing)
    msg = str(info.value)
    assert str(missing) in msg
    for preset in PRESET_PATHS:
        assert preset.stem in msg


def test_unknown_preset_name_lists_presets():
    with pytest.raises(SpecError) as info:
        load_spec("makemore-bnn")
    msg = str(info.value)
    assert "'makemore-bnn'" in msg and "presets:" in msg
    assert "makemore-bn," in msg and "digits-cnn" in msg


# --- happy paths ---------------------------------------------------------------------------------

def test_presets_are_shipped():
    assert len(PRESET_PATHS) >= 8
    assert {"makemore-bn", "digits-mlp", "digits-cnn"} <= {p.stem for p in PRESET_PATHS}


@pytest.mark.parametrize("preset", PRESET_PATHS, ids=lambda p: p.stem)
def test_every_preset_loads(preset):
    by_path = load_spec(preset)
    by_name = load_spec(preset.stem)
    assert isinstance(by_path, Spec)
    assert by_path == by_name
    assert by_path.name == preset.stem
    assert (by_path.train.steps is None) != (by_path.train.epochs is None)
    if by_path.data.kind == "names":
        assert by_path.model.kind == "mlp" and by_path.model.embed_dim == 10


def test_makemore_bn_values_land_typed():
    spec = load_spec("makemore-bn")
    assert spec.seed == 42
    assert spec.model.batchnorm is True and spec.model.bn_momentum == 0.001
    assert spec.model.init.output.scale == 0.01
    assert spec.schedule.name == "step" and spec.schedule.milestones == [0.5]  # MM3: 100,000 of 200,000
    assert spec.train.steps == 200000 and spec.train.batch_size == 32


def test_empty_file_gives_defaults(tmp_path):
    spec = load_spec(write(tmp_path, ""))
    assert spec.data.kind == "names" and spec.optim.name == "sgd" and spec.optim.lr == 0.1
    assert spec.train.steps == 1000 and spec.train.batch_size == 32
    assert spec.optim.betas == (0.9, 0.999)


def test_overrides_land_typed(tmp_path):
    path = write(tmp_path, "seed: 0\ndata: {kind: names}\nmodel: {embed_dim: 10, hidden: [200]}\n"
                           "optim: {name: sgd, lr: 0.1}\ntrain: {steps: 1000, batch_size: 32}\n")
    spec = load_spec(path, ["optim.lr=0.01", "train.steps=7", "train.batch_size=64", "seed=3",
                            "model.hidden=[8,8]"])
    assert spec.optim.lr == 0.01 and isinstance(spec.optim.lr, float)
    assert spec.train.steps == 7 and isinstance(spec.train.steps, int)
    assert spec.train.batch_size == 64 and isinstance(spec.train.batch_size, int)
    assert spec.seed == 3
    assert spec.model.hidden == [8, 8]
    assert spec.model.embed_dim == 10  # untouched fields keep the file's values


def test_override_creates_missing_section_and_reads_yaml_scalars(tmp_path):
    path = write(tmp_path, "train: {steps: 100}\n")
    spec = load_spec(path, ["optim.lr=1e-3", "train.batch_size=full", "optim.name=lbfgs",
                            "model.batchnorm=true"])
    assert spec.optim.lr == 0.001
    assert spec.train.batch_size == "full" and spec.optim.name == "lbfgs"
    assert spec.model.batchnorm is True


def test_override_applies_to_a_preset_by_name():
    spec = load_spec("makemore-bn", ["train.steps=150000", "optim.lr=0.05"])
    assert spec.train.steps == 150000 and spec.optim.lr == 0.05
    assert spec.schedule.milestones == [0.5]


def test_override_without_equals_rejected(tmp_path):
    path = write(tmp_path, "train: {steps: 10}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, ["optim.lr"])
    msg = str(info.value)
    assert "key.path=value" in msg and "'optim.lr'" in msg


def test_override_into_a_value_rejected(tmp_path):
    path = write(tmp_path, "optim: {lr: 0.1}\ntrain: {steps: 10}\n")
    msg = rejected(path, ["optim.lr.x=1"])
    assert "'lr'" in msg and "is a value, not a section" in msg


def test_override_with_bad_yaml_value_rejected(tmp_path):
    path = write(tmp_path, "train: {steps: 10}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, ["model.hidden=[8,8"])
    assert "'[8,8'" in str(info.value) and "not valid YAML" in str(info.value)


def test_override_making_spec_invalid_names_field(tmp_path):
    path = write(tmp_path, "optim: {lr: 0.1}\ntrain: {steps: 10}\n")
    msg = rejected(path, ["optim.lr=-1"])
    assert "optim.lr" in msg and "(got -1)" in msg


def test_override_milestone_check_uses_overridden_steps():
    with pytest.warns(BabysitWarning, match=r"schedule.milestones \[100000\] .*train.steps = 7"):
        load_spec(PRESETS_DIR / "makemore-bn.yaml", ["train.steps=7", "schedule.milestones=[100000]"])


def test_booleans_are_not_numbers(tmp_path):
    # pydantic's lax mode would read `true` as 1 / 1.0; a spec saying lr: true is a mistake.
    msg = rejected(write(tmp_path, "optim: {lr: true}\ntrain: {steps: 10, batch_size: true}\n"))
    assert "optim: lr must be a number, got True" in msg and "train: batch_size must be a number" in msg


@pytest.mark.parametrize("overrides, field, says", [
    (["optim.name=lbfgs", "train.batch_size=full", "optim.weight_decay=0.01"], "optim", "lbfgs takes no weight_decay"),
    (["model.embed_dim=null"], "(top level)", "model.embed_dim must be set"),
])
def test_rules_that_need_only_the_spec_fail_when_it_loads(overrides, field, says):
    with pytest.raises(SpecError) as err:
        load_spec("makemore-bn", overrides)
    assert "makemore-bn.yaml" in str(err.value) and f"{field}: " in str(err.value) and says in str(err.value)


def test_names_data_get_mm3s_embedding_unless_given(tmp_path):
    assert load_spec(write(tmp_path, "data: {kind: names}\n")).model.embed_dim == 10
    assert load_spec(write(tmp_path, "data: {kind: names}\nmodel: {embed_dim: 4}\n")).model.embed_dim == 4
    assert load_spec(write(tmp_path, "data: {kind: digits}\n")).model.embed_dim is None


def test_one_resume_check_names_the_sections_that_changed():
    from babysit.spec import resume_changes

    base = load_spec("makemore-bn")
    assert resume_changes(base, load_spec("makemore-bn", ["train.steps=300000", "watch.every=50"])) == []
    assert resume_changes(base.model_dump(mode="json"), load_spec("makemore-bn", ["optim.lr=0.5"])) == ["optim"]


def test_a_data_path_in_a_spec_file_is_relative_to_that_file(tmp_path, monkeypatch):
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "project" / "data" / "few.txt").write_text("ann\nbob\n")
    path = write(tmp_path / "project", "data: {kind: names, path: data/few.txt}\n")
    monkeypatch.chdir(tmp_path)  # not the spec's folder
    assert load_spec(path).data.path == str(tmp_path / "project" / "data" / "few.txt")
    given = load_spec(path, ["data.path=elsewhere.txt"]).data.path  # --set: as the shell sees it
    assert given == "elsewhere.txt"
