"""Tests for clvmodel.config: defaults, one-line errors, --set overrides, YAML loading, flatten."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path

import pytest

from clvmodel.config import (
    MODEL_NAMES,
    PURCHASE_MODEL_NAMES,
    SELECTION_METRICS,
    Config,
    DataConfig,
    apply_overrides,
    flatten,
    load_config,
    parse_config,
)
from clvmodel.errors import ClvError


def _raw(**extra: object) -> dict:
    """The smallest valid config mapping, plus ``extra`` top-level keys."""
    return {"name": "t", "data": {"source": "tx.csv"}, **extra}


# --- defaults ---------------------------------------------------------------------------------


def test_defaults() -> None:
    config = parse_config(_raw())
    assert config.name == "t"
    assert config.data.source == "tx.csv"
    assert (config.data.columns.customer_id, config.data.columns.date, config.data.columns.amount) == (
        "customer_id",
        "date",
        "amount",
    )
    assert config.data.date_format is None
    assert config.data.delimiter == ","
    assert config.data.header is True
    assert config.data.negative_amounts == "error"
    assert (config.data.duplicates, config.data.encoding, config.data.max_amount) == ("keep", "utf-8", 1e9)
    assert config.time_unit == "week"
    assert config.calibration_end is None and config.observation_end is None
    assert config.models == ["historical", "bgnbd", "gamma_gamma"]
    assert config.model == "auto"
    assert config.selection.metric == "spend_mae"
    assert (config.clv.horizon, config.clv.discount_rate, config.clv.margin) == (39, 0.0, 1.0)
    assert config.historical.retention_periods is None
    assert (config.tracking.experiment, config.tracking.enabled) == ("clvmodel", True)
    assert config.output.model_dir is None
    assert config.model_dir == Path("models/t")
    assert (config.segments.vip_share, config.segments.high_share, config.segments.medium_share) == (0.01, 0.2, 0.5)
    assert (config.segments.at_risk_below, config.segments.lost_below) == (0.5, 0.1)


def test_model_dir_from_output() -> None:
    assert parse_config(_raw(output={"model_dir": "out/m"})).model_dir == Path("out/m")


def test_default_models_list_is_not_shared_between_configs() -> None:
    first, second = parse_config(_raw()), parse_config(_raw())
    first.models.append("bgnbd")
    assert second.models == ["historical", "bgnbd", "gamma_gamma"]


def test_dates_parse_from_yaml_and_strings() -> None:
    config = parse_config(_raw(calibration_end="1997-09-30", observation_end=dt.date(1998, 6, 30)))
    assert config.calibration_end == dt.date(1997, 9, 30)
    assert config.observation_end == dt.date(1998, 6, 30)


# --- one-line errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (
            {"name": "t", "data": {"source": "x", "colums": {}}},
            r"^config: unknown config key 'data\.colums' \(did you mean 'data\.columns'\?\); remove it or fix its "
            r"spelling; keys of data: format, source, columns, date_format, delimiter, header, negative_amounts, ",
        ),
        (_raw(modles=["bgnbd"]), r"unknown config key 'modles' \(did you mean 'models'\?\); .*; keys at the top level: name, "),
        (_raw(zzz=1), r"^config: unknown config key 'zzz'; remove it or fix its spelling; keys at the top level: name, "),
        (_raw(clv={"horizon": 39, "discount": 0.1}), r"unknown config key 'clv\.discount'"),
        ({"data": {"source": "x"}}, r"^config: missing config key 'name'; add it, e\.g\. name: my_model$"),
        ({"name": "t"}, r"missing config key 'data'"),
        ({"name": "t", "data": {}}, r"missing config key 'data\.source'; add it, e\.g\. data\.source: transactions\.csv$"),
    ],
)
def test_unknown_and_missing_keys(raw: dict, match: str) -> None:
    with pytest.raises(ClvError, match=match):
        parse_config(raw)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (
            _raw(clv={"horizon": "abc"}),
            r"^config: clv\.horizon: 'abc' is not a horizon; use e\.g\. \"3 years\", 3y, 36m, 156w, 1095d, or a whole "
            r"number of the model's periods \(got 'abc'\)$",
        ),
        (_raw(clv={"margin": "high"}), r"clv\.margin: Input should be a valid number.*; write a number, e\.g\. clv\.margin: 0\.3$"),
        (_raw(data={"source": "x", "header": "maybe"}), r"data\.header: .*\(got 'maybe'\); write true or false, e\.g\. data\.header: true$"),
        (_raw(data={"source": "x", "encoding": "cp1252"}), r"data\.encoding: Input should be 'utf-8', 'latin-1' or 'utf-16' \(got 'cp1252'\); choose one of those"),
        (_raw(clv=39), r"^config: clv: Input should be a valid dictionary or instance of ClvConfig \(got 39\); write a mapping of keys$"),
        (_raw(clv={"horizon": 0}), r"clv\.horizon: Input should be greater than 0 \(got 0\)"),
        (_raw(clv={"horizon": 39.5}), r"clv\.horizon: .*\(got 39\.5\)"),
        (_raw(clv={"margin": 1.5}), r"clv\.margin: Input should be less than or equal to 1 \(got 1\.5\)"),
        (_raw(clv={"discount_rate": -0.1}), r"clv\.discount_rate: Input should be greater than or equal to 0"),
        (_raw(clv={"horizon": "2 days"}), r"^config: clv\.horizon 2 days is 0\.29 weeks, less than one week"),
        (_raw(clv={"discount_rate": 0.1, "annual_discount_rate": 0.1}),
         r"^config: clv: give clv\.discount_rate \(per period\) or clv\.annual_discount_rate \(per year\), not both"),
        (_raw(clv={"annual_discount_rate": -0.1}), r"clv\.annual_discount_rate: Input should be greater than or equal to 0"),
        (_raw(time_unit="decade"), r"time_unit: Input should be 'day', 'week', 'month' or 'year' \(got 'decade'\)"),
        (_raw(data={"source": "x", "negative_amounts": "drop"}), r"data\.negative_amounts: Input should be 'error' or 'exclude'"),
        (_raw(calibration_end="not a date"), r"calibration_end: Input should be a valid date.*; write a date as YYYY-MM-DD, e\.g\. calibration_end: 1997-09-30$"),
        (_raw(name="my model"), r"name: String should match pattern .*\(got 'my model'\); use letters, digits, '_', '\.' and '-' only, e\.g\. name: my_model$"),
        (_raw(historical={"retention_periods": 0}), r"historical\.retention_periods: Input should be greater than 0"),
        (_raw(tracking={"enabled": "maybe"}), r"tracking\.enabled: Input should be a valid boolean"),
    ],
)
def test_wrong_types_and_values(raw: dict, match: str) -> None:
    with pytest.raises(ClvError, match=match):
        parse_config(raw)


def test_unknown_model_lists_the_valid_ones() -> None:
    assert {"historical", "bgnbd", "gamma_gamma"} <= set(MODEL_NAMES)
    valid = re.escape(", ".join(MODEL_NAMES))
    with pytest.raises(
        ClvError, match=rf"models: unknown model 'paretonbd' \(did you mean 'pareto_nbd'\?\); valid models: {valid}; remove it"
    ):
        parse_config(_raw(models=["bgnbd", "paretonbd"]))


def test_the_transaction_model_names_are_accepted() -> None:
    # (models with extra requirements, e.g. sbg's own config shape, are tested on their own)
    from clvmodel.models import registry

    # The covariate variants need a customers section: tested in test_covariate_variants_are_added.
    transaction_purchase = tuple(
        n for n in registry.names("purchase", data="transactions") if not registry.family(n).covariates
    )
    assert set(transaction_purchase) < set(PURCHASE_MODEL_NAMES)  # bgbb needs a summary in opportunities
    for name in ("historical", *transaction_purchase):
        assert name in MODEL_NAMES
        assert parse_config(_raw(models=[name])).models == [name]
    for purchase in transaction_purchase:
        assert parse_config(_raw(models=[purchase, "gamma_gamma"])).models == [purchase, "gamma_gamma"]


def _with_customers(**customers: object) -> dict:
    return _raw(models=["historical", "bgnbd", "pareto_nbd", "gamma_gamma"],
                customers={"source": "c.csv", "columns": {"customer_id": "Id"}, **customers})


def test_covariate_variants_are_added_beside_their_family() -> None:
    config = parse_config(_with_customers(channel="Channel", covariates=["Gender", "Channel"]))
    assert config.models == ["historical", "bgnbd", "bgnbd_cov", "pareto_nbd", "pareto_nbd_cov", "gamma_gamma"]
    # A channel alone fits no covariate model; listing a variant by hand keeps one of each.
    assert parse_config(_with_customers(channel="Channel")).models == ["historical", "bgnbd", "pareto_nbd", "gamma_gamma"]
    raw = _with_customers(covariates=["Gender"])
    raw["models"] = ["bgnbd", "bgnbd_cov"]
    assert parse_config(raw).models == ["bgnbd", "bgnbd_cov"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": ["bgnbd", "bgnbd_cov"], "customers": None}, "bgnbd_cov is fitted with covariates: add customers.covariates"),
        ({"model": "pareto_nbd_cov"}, "cannot score existing ones"),
        ({"customers": {"source": "c.csv"}}, "name a channel column"),
        ({"customers": {"source": "c.csv", "covariates": ["G", "G"]}}, "covariate 'G' is listed twice"),
        ({"customers": {"source": "c.csv", "channel": "customer_id"}}, "cannot be a channel or covariate"),
    ],
)
def test_customer_sections_that_cannot_work_are_refused_in_one_line(change: dict, message: str) -> None:
    raw = _with_customers(covariates=["Gender"])
    raw.update(change)
    if raw.get("customers") is None:
        raw.pop("customers")
    with pytest.raises(ClvError) as err:
        parse_config(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_subscription_config() -> None:
    config = parse_config({"name": "s", "models": ["sbg"], "subscriptions": {"survivors": [1000, 631, 468, 382]}})
    assert config.data is None
    assert config.subscriptions.survivors == [1000, 631, 468, 382]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (_raw(models=["sbg"], subscriptions={"survivors": [10, 5, 3]}), r"^config: sbg is the subscription model: list it alone"),
        ({"name": "s", "models": ["sbg", "bgnbd"], "subscriptions": {"survivors": [10, 5]}}, r"list it alone \(models: \[sbg\]\)"),
        ({"name": "s", "models": ["sbg"]}, r"with a subscriptions section and no data section"),
        ({"name": "t", "models": ["bgnbd"]}, r"^config: missing config key 'data'"),
        (_raw(subscriptions={"survivors": [10, 5]}), r"^config: a subscriptions section needs models: \[sbg\]$"),
        ({"name": "s", "models": ["sbg"], "subscriptions": {}}, r"subscriptions: give exactly one of survivors .* or source"),
    ],
)
def test_subscription_config_errors(raw: dict, match: str) -> None:
    with pytest.raises(ClvError, match=match):
        parse_config(raw)


def test_model_listed_twice() -> None:
    with pytest.raises(ClvError, match=r"models: model 'bgnbd' is listed twice; list each model once"):
        parse_config(_raw(models=["bgnbd", "bgnbd"]))


def test_primary_model_must_be_a_listed_purchase_model() -> None:
    assert parse_config(_raw(models=["bgnbd", "gamma_gamma"], model="bgnbd")).model == "bgnbd"
    with pytest.raises(
        ClvError, match=r"model 'mbgnbd' must be 'auto' or one of the purchase models listed in models \(bgnbd\)"
    ):
        parse_config(_raw(models=["bgnbd", "gamma_gamma"], model="mbgnbd"))
    with pytest.raises(ClvError, match=r"must be 'auto' or one of the purchase models listed in models \(none\)"):
        parse_config(_raw(models=["historical"], model="bgnbd"))


def test_spend_model_needs_a_purchase_model() -> None:
    with pytest.raises(ClvError, match=r"gamma_gamma forecasts spend per purchase and needs a purchase model; add bgnbd"):
        parse_config(_raw(models=["historical", "gamma_gamma"]))


def test_selection_metric() -> None:
    assert parse_config(_raw(selection={"metric": "purchases_rmse"})).selection.metric == "purchases_rmse"
    first = re.escape(next(iter(SELECTION_METRICS)))
    with pytest.raises(
        ClvError, match=rf"selection\.metric: unknown selection metric 'mape'; choose one of: {first}, .* \(got 'mape'\)"
    ):
        parse_config(_raw(selection={"metric": "mape"}))


def test_empty_model_list() -> None:
    with pytest.raises(ClvError, match=r"models: list at least one model, e\.g\. models: \[historical, bgnbd, gamma_gamma\] \(got \[\]\)"):
        parse_config(_raw(models=[]))


@pytest.mark.parametrize("calibration_end", ["1998-06-30", "1998-07-01"])
def test_calibration_end_must_be_before_observation_end(calibration_end: str) -> None:
    with pytest.raises(ClvError, match=rf"calibration_end {calibration_end} must be before observation_end 1998-06-30"):
        parse_config(_raw(calibration_end=calibration_end, observation_end="1998-06-30"))


def test_cross_field_error_is_one_short_line() -> None:
    # a rule across keys names no key and does not echo the whole config back
    with pytest.raises(ClvError) as err:
        parse_config(_raw(calibration_end="1998-06-30", observation_end="1998-06-30"))
    assert str(err.value) == "config: calibration_end 1998-06-30 must be before observation_end 1998-06-30"


def test_calibration_end_alone_is_fine() -> None:
    assert parse_config(_raw(calibration_end="1997-09-30")).calibration_end == dt.date(1997, 9, 30)


@pytest.mark.parametrize(
    ("segments", "match"),
    [
        ({"vip_share": 0.3, "high_share": 0.2}, r"segments need vip_share < high_share < medium_share"),
        ({"high_share": 0.6, "medium_share": 0.5}, r"segments need vip_share < high_share < medium_share"),
        ({"lost_below": 0.6, "at_risk_below": 0.5}, r"segments need lost_below <= at_risk_below"),
    ],
)
def test_segment_thresholds_must_be_ordered(segments: dict, match: str) -> None:
    with pytest.raises(ClvError, match=match):
        parse_config(_raw(segments=segments))


@pytest.mark.parametrize("raw", [["a", "b"], "text", None, 3])
def test_top_level_must_be_a_mapping(raw: object) -> None:
    with pytest.raises(ClvError, match=rf"^config: expected a mapping of keys at the top level, got {type(raw).__name__}$"):
        parse_config(raw)  # type: ignore[arg-type]


def test_origin_prefixes_the_message() -> None:
    with pytest.raises(ClvError, match=r"^configs/x\.yaml: unknown config key 'nam'"):
        parse_config({"nam": "t", "name": "t", "data": {"source": "x"}}, origin="configs/x.yaml")


def test_config_is_frozen() -> None:
    config = parse_config(_raw())
    with pytest.raises(Exception, match="frozen"):
        config.name = "other"  # type: ignore[misc]


# --- --set overrides --------------------------------------------------------------------------


def test_overrides_parse_yaml_scalars() -> None:
    out = apply_overrides(
        _raw(),
        [
            "clv.horizon=52",
            "clv.discount_rate=0.01",
            "tracking.enabled=false",
            "calibration_end=1997-09-30",
            "data.source=data/sales 2024.csv",
            "historical.retention_periods=null",
            'data.columns.customer_id="007"',
            "output.model_dir=",
        ],
    )
    assert out == {
        "name": "t",
        "data": {"source": "data/sales 2024.csv", "columns": {"customer_id": "007"}},
        "clv": {"horizon": 52, "discount_rate": 0.01},
        "tracking": {"enabled": False},
        "calibration_end": dt.date(1997, 9, 30),
        "historical": {"retention_periods": None},
        "output": {"model_dir": None},
    }
    assert type(out["clv"]["horizon"]) is int and type(out["clv"]["discount_rate"]) is float


def test_overrides_create_nested_keys_and_keep_siblings() -> None:
    raw = {"name": "t", "data": {"source": "x", "columns": {"date": "day"}}, "clv": 5}
    before = copy.deepcopy(raw)
    out = apply_overrides(raw, ["data.columns.amount=value", "clv.margin=0.3", "a.b.c=1"])
    assert out == {
        "name": "t",
        "data": {"source": "x", "columns": {"date": "day", "amount": "value"}},
        "clv": {"margin": 0.3},  # a scalar in the way is replaced by a mapping
        "a": {"b": {"c": 1}},
    }
    assert raw == before  # the caller's mapping is not modified


def test_later_override_wins_and_value_may_contain_equals() -> None:
    out = apply_overrides({}, ["clv.horizon=10", "clv.horizon=20", "name=a=b"])
    assert out == {"clv": {"horizon": 20}, "name": "a=b"}


@pytest.mark.parametrize("item", ["noequals", "=5", ""])
def test_override_without_key_value_is_rejected(item: str) -> None:
    with pytest.raises(ClvError, match=rf"--set {item!r}: expected dotted\.key=value, e\.g\. --set clv\.horizon=52"):
        apply_overrides(_raw(), [item])


def test_override_with_text_that_is_not_yaml_is_kept_as_text() -> None:
    # `--set data.date_format=%Y%m%d` is the natural way to set the format the config docs show;
    # `%` starts a YAML directive, so safe_load raises. The value should be kept as the string.
    assert apply_overrides(_raw(), ["data.date_format=%Y%m%d"])["data"]["date_format"] == "%Y%m%d"


def test_overrides_are_validated_like_the_file() -> None:
    with pytest.raises(ClvError, match=r"clv\.horizon: 'soon' is not a horizon"):
        parse_config(apply_overrides(_raw(), ["clv.horizon=soon"]))
    with pytest.raises(ClvError, match=r"unknown config key 'clv\.horizn'"):
        parse_config(apply_overrides(_raw(), ["clv.horizn=52"]))


# --- load_config ------------------------------------------------------------------------------

_YAML = """\
name: cdnow
data:
  source: bundled:CDNOW_sample
  columns: {customer_id: customer_id, date: date, amount: amount}
  date_format: "%Y%m%d"
time_unit: week
calibration_end: 1997-09-30
observation_end: 1998-06-30
models: [historical, bgnbd, gamma_gamma]
clv: {horizon: 39, discount_rate: 0.0, margin: 1.0}
"""


def test_load_config_reads_yaml_and_applies_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_YAML, encoding="utf-8")
    config = load_config(path, ["clv.horizon=52", "models=[bgnbd]"])
    assert isinstance(config, Config)
    assert config.data.source == "bundled:CDNOW_sample"
    assert config.data.date_format == "%Y%m%d"
    assert config.calibration_end == dt.date(1997, 9, 30)
    assert config.observation_end == dt.date(1998, 6, 30)
    assert config.clv.horizon == 52
    assert config.models == ["bgnbd"]
    assert load_config(path).clv.horizon == 39  # overrides do not stick to the file


def test_load_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ClvError, match=rf"^config file {missing} not found; pass the path to a YAML config"):
        load_config(missing)


def test_load_config_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ClvError, match=r"not found"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "name: t\ndata:\n  source: x\n   bad: indent\n",
        "name: [unclosed\n",
        "name: !!python/object:os.system {}\n",  # safe loading refuses object tags
    ],
)
def test_load_config_invalid_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ClvError, match=rf"^{path}: not valid YAML \(.+\); check the indentation and quoting$"):
        load_config(path)


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ClvError, match=rf"^{path} is not UTF-8 text \(byte 0xe9 at offset 9\); re-save it as UTF-8$"):
        load_config(path)


def test_load_config_empty_file_reports_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ClvError, match=rf"^{path}: missing config key 'name'"):
        load_config(path)


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_YAML.replace("columns:", "colums:"), encoding="utf-8")
    with pytest.raises(ClvError, match=rf"^{path}: unknown config key 'data\.colums'"):
        load_config(path)


def test_repo_configs_load() -> None:
    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("cdnow*.yaml"))
    assert configs, "the repository ships configs/cdnow*.yaml"
    for path in configs:
        assert load_config(path).data.source.startswith("bundled:")


# --- flatten ----------------------------------------------------------------------------------


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": [1, 2], "f": {}}) == {"a.b": 1, "a.c.d": None, "e": [1, 2]}
    assert flatten({}) == {}
    assert flatten({"x": 1}, prefix="p.") == {"p.x": 1}


def test_flatten_config_gives_dotted_public_names() -> None:
    flat = flatten(parse_config(_raw()).model_dump())
    assert flat["clv.horizon"] == 39
    assert flat["data.columns.customer_id"] == "customer_id"
    assert flat["historical.retention_periods"] is None
    assert all(not isinstance(v, dict) for v in flat.values())


def test_memory_limit_is_a_duckdb_size() -> None:
    assert parse_config({"name": "t", "data": {"source": "tx.csv", "memory_limit": "8GB"}}).data.memory_limit == "8GB"
    assert parse_config(_raw()).data.memory_limit is None  # DuckDB's own default
    with pytest.raises(ClvError, match=r"data\.memory_limit: String should match pattern"):
        parse_config({"name": "t", "data": {"source": "tx.csv", "memory_limit": "lots"}})


# --- issue 12: hostile config files, non-finite numbers, the horizon bound ----------------------

def _bomb(levels: int = 9) -> str:
    """A 'billion laughs': each level lists the previous one 10 times (10**levels items in all)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nname: *a{levels}\ndata: {{source: x}}\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    import time

    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(), encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(ClvError, match=rf"^{path}: line 2: YAML alias \*a0 is not allowed") as info:
        load_config(path)
    assert time.perf_counter() - started < 0.5  # it hung on len(repr(...)) of 10**9 items
    assert len(str(info.value)) < 300


def test_a_duplicate_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\ndata: {source: x}\nclv:\n  horizon: 39\n  horizon: 52\n", encoding="utf-8")
    with pytest.raises(ClvError, match=rf"^{path}: line 5: key 'horizon' appears twice in the same mapping"):
        load_config(path)
    path.write_text("name: a\nname: b\ndata: {source: x}\n", encoding="utf-8")  # at the top level too
    with pytest.raises(ClvError, match=r"line 2: key 'name' appears twice"):
        load_config(path)


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: a\nhistorical: " + "[" * 200_000 + "]" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(ClvError, match=r"nested more than 20 levels deep"):
        load_config(path)


def test_a_file_over_the_size_bound_is_not_read(tmp_path: Path) -> None:
    from clvmodel.config import MAX_YAML_BYTES

    path = tmp_path / "big.yaml"
    path.write_text("name: '" + "x" * MAX_YAML_BYTES + "'\n", encoding="utf-8")
    with pytest.raises(ClvError, match=rf"^{path} is larger than 1,000,000 bytes"):
        load_config(path)


def test_an_echoed_value_is_an_excerpt(tmp_path: Path) -> None:
    from clvmodel.config import excerpt

    path = tmp_path / "long.yaml"
    path.write_text("name: '" + "not a name " * 50_000 + "'\ndata: {source: x}\n", encoding="utf-8")
    with pytest.raises(ClvError) as info:
        load_config(path)
    assert len(str(info.value)) < 400 and "…" in str(info.value)
    assert excerpt("x" * 10_000).endswith("…") and len(excerpt("x" * 10_000)) == 81
    assert excerpt(list(range(100_000))).startswith("[0, 1, 2") and len(excerpt(list(range(100_000)))) <= 81
    assert excerpt("a year") == "'a year'"


def test_set_values_are_read_by_the_same_bounded_loader() -> None:
    with pytest.raises(ClvError, match=r"^--set name: line 1: YAML alias \*a is not allowed"):
        apply_overrides(_raw(), ["name=[&a x, *a]"])
    with pytest.raises(ClvError, match=r"key 'a' appears twice"):
        apply_overrides(_raw(), ["clv={a: 1, a: 2}"])


@pytest.mark.parametrize("key", ["clv.discount_rate", "clv.margin", "data.max_amount", "historical.retention_periods",
                                 "intervals.level", "segments.vip_share"])
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_refused_in_every_section(key: str, value: str) -> None:
    with pytest.raises(ClvError, match=rf"{key}: Input should be a finite number"):
        parse_config(apply_overrides(_raw(), [f"{key}={value}"]))


def test_the_horizon_is_at_most_100_years_in_the_time_unit() -> None:
    assert parse_config(apply_overrides(_raw(), ["clv.horizon=5217"])).clv.horizon == 5217
    with pytest.raises(ClvError, match=r"clv\.horizon 5218 is more than 100 years; use at most 5,217 weeks"):
        parse_config(apply_overrides(_raw(), ["clv.horizon=5218"]))
    assert parse_config(apply_overrides(_raw(), ["clv.horizon=36525", "time_unit=day"])).clv.horizon == 36525
    with pytest.raises(ClvError, match=r"horizon 1000000000 is more than 100 years"):
        parse_config(apply_overrides(_raw(), ["clv.horizon=1000000000", "time_unit=day"]))


def test_read_yaml_reads_a_plain_file(tmp_path: Path) -> None:
    from clvmodel.config import read_yaml

    path = tmp_path / "ok.yaml"
    path.write_text("a: {b: [1, 2.5, x]}\n", encoding="utf-8")
    assert read_yaml(path) == {"a": {"b": [1, 2.5, "x"]}}


@pytest.mark.parametrize("delimiter", ["::", "a", "'", "\n", ""])
def test_a_delimiter_is_one_character_as_the_saved_model_requires(delimiter: str) -> None:
    from pydantic import ValidationError

    # A config that trains must give a model that scores: clvmodel.document applies this same rule.
    with pytest.raises(ValidationError, match="must be one character"):
        DataConfig(source="x.csv", delimiter=delimiter)
    assert DataConfig(source="x.csv", delimiter="whitespace").delimiter == "whitespace"


def test_challenger_max_train_customers() -> None:
    base = _raw(calibration_end="1997-09-30", models=["bgnbd", "challenger"])
    assert parse_config(base).settings_of("challenger") == {"inner_cut": None, "max_train_customers": None}
    capped = parse_config({**base, "challenger": {"max_train_customers": 250000}})
    assert capped.settings_of("challenger") == {"inner_cut": None, "max_train_customers": 250000}
    # Fewer than the challenger's min_customers (50) is refused by the config, in one line.
    with pytest.raises(ClvError, match=r"^config: challenger\.max_train_customers: Input should be greater than or "
                                       r"equal to 50 \(got 49\)"):
        parse_config({**base, "challenger": {"max_train_customers": 49}})
