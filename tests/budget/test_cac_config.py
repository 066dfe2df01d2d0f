"""Tests for clvmodel.budget.cac_config: the CAC config file, its defaults, and its one-line
error messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import clvmodel.budget as budget
from clvmodel.budget import CacConfig, load_cac_config, parse_cac_config
from clvmodel.errors import ClvError

REPO = Path(__file__).resolve().parents[2]

BRIEF_YAML = """\
target_ratio: 3.0
margin: 1.0                 # applied to predicted_clv when the scores are revenue
budget: 100000              # total acquisition budget to allocate
channels:
  search: {cac: 40.0, min_spend: 0, max_spend: 60000, response: {k: 2.5, beta: 0.8}}
  social: {spend: 20000, customers: 800}          # CAC = spend / customers
"""


def test_load_brief_example(tmp_path: Path) -> None:
    path = tmp_path / "cac.yaml"
    path.write_text(BRIEF_YAML)
    config = load_cac_config(path)
    assert config.target_ratio == 3.0 and config.margin == 1.0 and config.budget == 100000
    search, social = config.channels["search"], config.channels["social"]
    assert search.observed_cac == 40.0 and search.max_spend == 60000
    assert search.curve() == (2.5, 0.8)
    assert social.observed_cac == 25.0  # 20000 / 800
    assert social.curve() == pytest.approx((1 / 25.0, 1.0))  # linear at its CAC
    assert config.retention_weights == budget.DEFAULT_RETENTION_WEIGHTS
    assert config.horizon is None and config.retention_budget == 0


def test_response_k_calibrated_through_observed_point(cfg: Callable[..., CacConfig]) -> None:
    ch = cfg({"s": {"spend": 10000, "customers": 400, "response": {"beta": 0.5}}}).channels["s"]
    k, beta = ch.curve()
    assert beta == 0.5
    assert k * 10000**beta == pytest.approx(400)  # curve passes through (spend, customers)


def test_partial_retention_weights_keep_defaults(cfg: Callable[..., CacConfig]) -> None:
    config = cfg({"s": {"cac": 1}}, retention_weights={"lost": 0.5, "winback": 2})
    assert config.retention_weights["lost"] == 0.5
    assert config.retention_weights["VIP"] == 1.0
    assert config.retention_weights["winback"] == 2


def test_demo_config_is_labelled_synthetic_and_loads() -> None:
    path = REPO / "configs" / "cac_demo.yaml"
    assert "SYNTHETIC" in path.read_text()
    config = load_cac_config(path)
    assert set(config.channels) == set(budget.SYNTHETIC_CHANNEL_SHARES)
    assert config.margin == 0.3 and config.horizon == 39


BAD_CONFIGS = [
    ({"channels": {"s": {"cac": 0}}}, r"channels\.s\.cac: must be > 0 \(got 0\); CAC is a cost"),
    ({"channels": {"s": {"cac": -5}}}, r"channels\.s\.cac: must be > 0 \(got -5\)"),
    ({"channels": {"s": {"spend": 0, "customers": 3}}}, r"channels\.s\.spend: must be > 0"),
    ({"channels": {"s": {"spend": 10, "customers": 0}}}, r"channels\.s\.customers: must be > 0"),
    (
        {"channels": {"s": {"cac": 5, "spend": 10, "customers": 2}}},
        r"channels\.s: give either cac or spend\+customers, not both; remove one",
    ),
    ({"channels": {"s": {"min_spend": 1}}}, r"channels\.s: no CAC; set cac, or spend and customers"),
    ({"channels": {"s": {"spend": 10}}}, r"channels\.s: spend and customers go together; add customers"),
    (
        {"channels": {"s": {"cac": 5, "response": {"k": 1, "beta": 0}}}},
        r"channels\.s\.response\.beta: must be in \(0, 1\] \(got 0\); use 1 for a linear channel",
    ),
    (
        {"channels": {"s": {"cac": 5, "response": {"k": 1, "beta": 1.2}}}},
        r"channels\.s\.response\.beta: must be in \(0, 1\] \(got 1\.2\)",
    ),
    (
        {"channels": {"s": {"cac": 5, "response": {"k": 1, "beta": -0.5}}}},
        r"channels\.s\.response\.beta: must be in \(0, 1\]",
    ),
    (
        {"channels": {"s": {"cac": 5, "response": {"beta": 0.5}}}},
        r"channels\.s: response\.k is required when the channel gives cac",
    ),
    (
        {"channels": {"s": {"cac": 5, "min_spend": 5000, "max_spend": 1000}}, "budget": 1e5},
        r"channels\.s: min_spend 5000 is above max_spend 1000; lower min_spend or raise max_spend",
    ),
    (
        {
            "budget": 1000,
            "channels": {"a": {"cac": 5, "min_spend": 3000}, "b": {"cac": 5, "min_spend": 2000}},
        },
        r"^CAC config: infeasible: budget 1000 is below the channels' minimum spend 5000; "
        r"raise budget or lower min_spend$",
    ),
    ({"channels": {"s": {"cca": 5}}}, r"channels\.s\.cca: unknown key; remove it \(allowed: cac, "),
    ({"budjet": 5, "channels": {"s": {"cac": 5}}}, r"budjet: unknown key; remove it \(allowed: target"),
    ({"budget": 5}, r"channels: required key is missing; add it, e\.g\. channels: \{search: \{cac: 40\}\} \(each acquisition channel"),
    ({"channels": {}}, r"channels: is empty; add at least one channel"),
    ({"channels": {"unknown": {"cac": 5}}}, r"channels: 'unknown' is reserved .*; rename"),
    ({"margin": 1.5, "channels": {"s": {"cac": 5}}}, r"margin: must be <= 1 \(got 1\.5\)"),
    ({"margin": 0, "channels": {"s": {"cac": 5}}}, r"margin: must be > 0"),
    ({"target_ratio": 0.5, "channels": {"s": {"cac": 5}}}, r"target_ratio: must be >= 1"),
    ({"budget": -1, "channels": {"s": {"cac": 5}}}, r"budget: must be >= 0 \(got -1\)"),
    ({"budget": "lots", "channels": {"s": {"cac": 5}}}, r"budget: expected a number \(got 'lots'\)"),
    ({"budget": float("nan"), "channels": {"s": {"cac": 5}}}, r"budget: must be a finite number"),
    ({"horizon": 2.5, "channels": {"s": {"cac": 5}}}, r"horizon: expected a whole number"),
    ({"channels": {"s": "cheap"}}, r"channels\.s: expected a mapping of keys"),
    ({"channels": {7: {"cac": 5}}}, r"channels\.7: names must be text \(got 7\); quote the name"),
    (
        {"retention_weights": {"VIP": -1}, "channels": {"s": {"cac": 5}}},
        r"retention_weights\.VIP: must be >= 0 \(got -1\)",
    ),
]


@pytest.mark.parametrize(("data", "match"), BAD_CONFIGS)
def test_config_errors_are_one_line(data: dict, match: str) -> None:
    with pytest.raises(ClvError, match=match) as info:
        parse_cac_config(data)
    assert "\n" not in str(info.value)


def test_several_problems_are_counted_on_one_line() -> None:
    with pytest.raises(ClvError, match=r"\(and 1 more problem\)$") as info:
        parse_cac_config({"margin": 2, "budget": -1, "channels": {"s": {"cac": 5}}})
    assert "\n" not in str(info.value)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ClvError, match=r"CAC config not found: .*nope\.yaml; check the path"):
        load_cac_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels:\n  search: {cac: 4\n")
    with pytest.raises(ClvError, match=r"bad\.yaml: not valid YAML \(line \d+: .*\); check the indentation and quoting"):
        load_cac_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ClvError, match=r"empty\.yaml: is empty, expected a mapping"):
        load_cac_config(empty)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ClvError, match=r"list\.yaml: is a list, expected a mapping"):
        load_cac_config(listy)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("channels:\n  search: {cac: -1}\n")
    with pytest.raises(ClvError, match=r"^.*wrong\.yaml: channels\.search\.cac: must be > 0"):
        load_cac_config(wrong)


# --- issue 12: hostile CAC files -----------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    import time

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nchannels:\n  search: {cac: *a9}\n")
    started = time.perf_counter()
    with pytest.raises(ClvError, match=r"bomb\.yaml: line 2: YAML alias \*a0 is not allowed") as info:
        load_cac_config(path)
    assert time.perf_counter() - started < 0.5  # it printed a 2 GB line after 144 s
    assert len(str(info.value)) < 300


def test_a_duplicate_channel_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("channels:\n  search: {cac: 40}\n  search: {cac: 400}\n")
    with pytest.raises(ClvError, match=r"dup\.yaml: line 3: key 'search' appears twice in the same mapping"):
        load_cac_config(path)


def test_a_huge_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("channels:\n  search: {cac: '" + "x" * 2_000_000 + "'}\n")
    with pytest.raises(ClvError, match=r"big\.yaml is larger than 1,000,000 bytes"):
        load_cac_config(path)


def test_echoed_values_and_keys_are_excerpts(tmp_path: Path) -> None:
    for text in ("channels:\n  search: {cac: '" + "forty " * 100_000 + "'}\n",
                 "channels:\n  '" + "s" * 100_000 + "': {cac: -1}\n",
                 "channels:\n  search: {cac: [" + ", ".join(["-1"] * 50_000) + "]}\n"):
        path = tmp_path / "long.yaml"
        path.write_text(text)
        with pytest.raises(ClvError) as info:
            load_cac_config(path)
        assert len(str(info.value)) < 400, str(info.value)[:400]


def test_the_horizon_is_bounded() -> None:
    with pytest.raises(ClvError, match=r"horizon: must be <= 36525"):
        parse_cac_config({"horizon": 10**9, "channels": {"s": {"cac": 5}}})
