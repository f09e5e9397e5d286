"""The search: section: bad input gets an error naming the field, the value and the choices."""
import pytest

from babysit.search.driver import check_space, resolve_search
from babysit.spec import SearchSpec
from babysit.spec import SpecError, load_spec, spec_from_dict

LR = {"type": "log_uniform", "low": 1e-3, "high": 1.0}


def spec_with_search(search, **extra):
    return spec_from_dict({"name": "t", "train": {"steps": 100}, "search": search, **extra}, "t.yaml")


def test_a_good_search_section_loads_with_its_defaults():
    s = spec_with_search({"params": {"optim.lr": LR}})
    assert s.search.sampler == "random" and s.search.pruner == "divergence"
    assert s.search.params["optim.lr"].log and s.search.stage_trials(0) == 16


def test_unknown_type_names_the_field_and_the_choices():
    with pytest.raises(SpecError) as err:
        spec_with_search({"params": {"optim.lr": {"type": "loguniform", "low": 1e-3, "high": 1}}})
    msg = str(err.value)
    assert "search.params.optim.lr.type" in msg and "'loguniform'" in msg and "'log_uniform'" in msg


@pytest.mark.parametrize("bad, words", [
    ({"type": "uniform", "low": 0.5, "high": 0.5}, ["low must be below high", "low=0.5"]),
    ({"type": "uniform", "low": 2, "high": 1}, ["low must be below high"]),
    ({"type": "log_uniform", "low": 0, "high": 1}, ["log space", "low > 0", "got low=0"]),
    ({"type": "log_uniform", "low": -1, "high": 1}, ["low > 0"]),
    ({"type": "categorical"}, ["needs choices"]),
    ({"type": "int", "low": 1.5, "high": 4}, ["whole-number"]),
    ({"type": "uniform", "low": 0}, ["needs low and high"]),
])
def test_impossible_ranges_are_refused(bad, words):
    with pytest.raises(SpecError) as err:
        spec_with_search({"params": {"model.dropout": bad}})
    assert "search.params.model.dropout" in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_grid_with_a_trial_count_and_random_without_one_are_refused():
    with pytest.raises(SpecError, match=r"search: stages\[0\]: sampler 'grid' runs every grid point \(49 here\); remove trials"):
        spec_with_search({"params": {"optim.lr": LR, "optim.weight_decay": {**LR, "low": 1e-6}},
                          "sampler": "grid", "stages": [{"trials": 10, "steps": 50}]})
    with pytest.raises(SpecError, match=r"set trials"):
        spec_with_search({"params": {"optim.lr": LR}, "stages": [{"steps": 50}]})


def test_an_unknown_sampler_lists_the_valid_ones():
    with pytest.raises(SpecError) as err:
        spec_with_search({"params": {"optim.lr": LR}, "sampler": "bayes"})
    assert "search.sampler" in str(err.value) and "'random', 'grid' or 'tpe'" in str(err.value)


def test_a_path_that_is_not_a_spec_field_fails_before_any_trial():
    s = spec_with_search({"params": {"optim.lrr": LR}})
    with pytest.raises(SpecError) as err:
        check_space(s, s.search.params)
    assert "search.params.optim.lrr" in str(err.value) and "unknown key" in str(err.value)


def test_a_range_the_spec_rejects_fails_before_any_trial():
    s = spec_with_search({"params": {"model.dropout": {"type": "uniform", "low": 0.0, "high": 1.5}}})
    with pytest.raises(SpecError) as err:
        check_space(s, s.search.params)
    assert "search.params.model.dropout: the value 1.5" in str(err.value) and "less than 1" in str(err.value)


def test_total_trials_are_shared_among_stages_in_proportion():
    search = SearchSpec(params={"optim.lr": LR}, stages=[{"trials": 16, "steps": 10}, {"trials": 8, "steps": 40}])
    assert [s.trials for s in search.with_total_trials(24).stages] == [16, 8]
    assert [s.trials for s in search.with_total_trials(10).stages] == [7, 3]
    assert [s.trials for s in search.with_total_trials(2).stages] == [1, 1]
    assert [s.steps for s in search.with_total_trials(10).stages] == [10, 40]
    with pytest.raises(ValueError, match="fewer than the 2 stages"):
        search.with_total_trials(1)


def test_grid_points_are_log_spaced_for_log_parameters():
    search = SearchSpec(params={"optim.lr": LR}, sampler="grid", grid_points=4, stages=[{"steps": 10}])
    assert search.params["optim.lr"].grid(4) == pytest.approx([1e-3, 1e-2, 1e-1, 1.0])
    assert search.grid_size() == 4


def test_a_spec_without_a_search_section_is_told_how_to_add_one():
    with pytest.raises(SpecError, match="no search: section"):
        resolve_search(load_spec("digits-mlp"))


def test_switching_to_grid_from_the_command_line_drops_trial_counts():
    s = spec_with_search({"params": {"optim.lr": LR}, "stages": [{"trials": 3, "steps": 20}]})
    search = resolve_search(s, sampler="grid")
    assert search.sampler == "grid" and search.stage_trials(0) == 7


def test_a_later_grid_stage_counts_the_points_of_its_own_narrowed_space():
    """lr x 3 activations: 21 points in stage 1; narrowed to one activation, stage 2 has 7."""
    from babysit.search.stages import narrow

    search = SearchSpec(params={"optim.lr": LR, "model.activation": {"type": "categorical",
                                                                      "choices": ["relu", "tanh", "gelu"]}},
                        sampler="grid", stages=[{"steps": 10}, {"steps": 20}])
    results = [({"optim.lr": lr, "model.activation": a}, (1 if a == "relu" else 2) + abs(lr - 0.05))
               for lr in search.params["optim.lr"].grid(7) for a in ["relu", "tanh", "gelu"]]
    narrowed = narrow(search.params, results, search.keep, min_keep=search.promote)
    assert narrowed.space["model.activation"].choices == ["relu"]
    assert search.stage_trials(0) == 21 and search.stage_trials(1, narrowed.space) == 7
    with pytest.raises(ValueError, match="narrowed space"):
        search.stage_trials(1)  # a later grid stage's size is never guessed from the first's


@pytest.mark.parametrize("raw", [{"type": "log_uniform", "low": 1e-4, "high": 1.0},
                                 {"type": "uniform", "low": -1.0, "high": 2.0},
                                 {"type": "int", "low": 2, "high": 5},
                                 {"type": "log_int", "low": 1, "high": 64},
                                 {"type": "categorical", "choices": ["tanh", "relu", None]}])
def test_planned_values_cover_each_range_and_stay_in_it(raw):
    import numpy as np

    from babysit.spec import ParamSpec

    p = ParamSpec.model_validate(raw)
    rng = np.random.default_rng(0)
    values = [p.sample(rng) for _ in range(400)]
    if p.type == "categorical":
        assert set(values) == set(p.choices)
        return
    assert all(p.low <= v <= p.high for v in values)
    if p.type in ("int", "log_int"):
        assert all(isinstance(v, int) for v in values) and {p.low, p.high} <= set(values)
    if p.log:  # log-uniform: about as many draws in each decade
        decades = np.floor(np.log10(values))
        assert np.unique(decades).size >= 2 and abs(np.mean(np.log(values)) - np.log(p.low * p.high) / 2) < 0.5
