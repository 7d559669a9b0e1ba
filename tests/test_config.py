"""Configuration overrides: a changed model kind does not inherit the previous kind's params."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamsvc.config import ConfigError, load_settings

KIND = "STREAMSVC_MODELS__DEFAULT__KIND"
PARAMS = "STREAMSVC_MODELS__DEFAULT__PARAMS"


def _learns(spec) -> None:
    model = spec.build()
    model.learn_one({"a": 1.0, "b": 0.0}, 1)
    assert set(model.predict_proba_one({"a": 1.0, "b": 0.0})) <= {0, 1}


def test_shipped_default_is_drift_moe_with_params():
    spec = load_settings(None, {}).models["default"]
    assert spec.kind == "drift_moe" and spec.params["n_experts"] == 8


@pytest.mark.parametrize("kind", ["arf", "hoeffding_tree", "hoeffding_adaptive_tree"])
def test_env_kind_alone_drops_the_shipped_drift_moe_params(kind):
    spec = load_settings(None, {KIND: kind}).models["default"]
    assert spec.kind == kind and spec.family == "classifier"
    assert spec.params == {}  # the new kind's own defaults apply
    assert spec.shards == 1 and spec.drift_detector == "none"  # kind-independent keys stay
    _learns(spec)


def test_env_kind_and_params_together_keep_the_given_params():
    spec = load_settings(None, {KIND: "arf", f"{PARAMS}__N_MODELS": "3",
                                f"{PARAMS}__SEED": "7"}).models["default"]
    assert spec.kind == "arf" and spec.params == {"n_models": 3, "seed": 7}
    model = spec.build()
    assert model.n_models == 3 and model.seed == 7
    _learns(spec)

    spec = load_settings(None, {KIND: "hoeffding_tree",
                                PARAMS: "{grace_period = 10}"}).models["default"]
    assert spec.params == {"grace_period": 10} and spec.build().grace_period == 10


def test_env_params_without_a_kind_change_still_merge_into_the_shipped_ones():
    spec = load_settings(None, {f"{PARAMS}__N_EXPERTS": "10"}).models["default"]
    assert spec.kind == "drift_moe" and spec.params["n_experts"] == 10
    assert spec.params["top_k"] == 6  # the other shipped params stay
    same = load_settings(None, {KIND: "drift_moe", f"{PARAMS}__N_EXPERTS": "10"})
    assert same.models["default"].params == spec.params  # same kind: nothing dropped


@pytest.mark.parametrize(("env", "key"), [
    ({KIND: "arf", f"{PARAMS}__N_EXPERTS": "4"}, "n_experts"),
    ({KIND: "hoeffding_tree", f"{PARAMS}__GRACE_PEROD": "5"}, "grace_perod"),
    ({KIND: "arf", PARAMS: "{top_k = 2}"}, "top_k"),
])
def test_a_wrong_param_for_the_new_kind_fails_naming_the_key(env, key):
    with pytest.raises(ConfigError, match=rf"models\.default\.params.*{key}"):
        load_settings(None, env)


@pytest.mark.parametrize(("env", "said"), [
    ({f"{PARAMS}__N_EXPERTS": "abc"},
     "models.default.params': cannot build 'drift_moe': parameter 'n_experts' must be a "
     "number (default 8), got 'abc'"),
    ({"STREAMSVC_MODELS__DEFAULT__DATA_DRIFT_PARAMS__WINDOW": "abc"},
     "models.default.data_drift_params': parameter 'window' must be a number"),
    ({KIND: "stream_td", f"{PARAMS}__SKIP": "1"}, "parameter 'skip' must be true or false"),
])
def test_a_value_of_the_wrong_type_is_named_in_words(env, said):
    # it used to surface Python's own words: "'<' not supported between instances of 'str'
    # and 'int'", "not all arguments converted during string formatting"
    with pytest.raises(ConfigError) as err:
        load_settings(None, env)
    assert said in str(err.value)


def test_a_misspelt_top_level_variable_is_said_not_silently_ignored(capsys):
    # STREAMSVC_BROKERS used to send to the default broker without a word
    settings = load_settings(None, {"STREAMSVC_BROKERS": "kafka://elsewhere:9092",
                                    "STREAMSVC_REQUIRE_KAFKA": "1", "STREAMSVC_WORKER_ID": "w"})
    err = capsys.readouterr().err
    assert ("environment variable STREAMSVC_BROKERS is not a streamsvc setting and is ignored "
            "(did you mean STREAMSVC_BROKER?)") in err
    assert "REQUIRE_KAFKA" not in err and "WORKER_ID" not in err  # read elsewhere, not typos
    assert "elsewhere" not in settings.bootstrap


def test_none_passes_where_a_constructor_allows_it():
    # from a notebook (TOML cannot say None): StreamTD(average=None) is the latest weights
    from models.factory import build_model

    assert build_model("stream_td", {"average": None, "seed": None}).average is None


def test_env_kind_change_drops_params_from_a_config_file(tmp_path: Path):
    p = tmp_path / "c.toml"
    p.write_text("[models.default]\nkind = 'drift_moe'\nshards = 2\n"
                 "params = { n_experts = 4, top_k = 2 }\n")
    assert load_settings(p, {}).models["default"].params == {"n_experts": 4, "top_k": 2}
    spec = load_settings(p, {KIND: "hoeffding_tree"}).models["default"]
    assert spec.kind == "hoeffding_tree" and spec.params == {} and spec.shards == 2
    _learns(spec)


def test_config_file_with_another_kind_does_not_inherit_shipped_params(tmp_path: Path):
    p = tmp_path / "c.toml"
    p.write_text("[models.default]\nkind = 'arf'\n")
    spec = load_settings(p, {}).models["default"]
    assert spec.kind == "arf" and spec.params == {}
    _learns(spec)
    p.write_text("[models.default]\nkind = 'arf'\nparams = { n_experts = 4 }\n")
    with pytest.raises(ConfigError, match="n_experts"):
        load_settings(p, {})
