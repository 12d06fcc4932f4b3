"""``regledger indicators list``: the catalogue, per-symbol parameters, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli


def listed(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["indicators", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.output)
    return document


def by_name(document: dict[str, object]) -> dict[str, dict[str, object]]:
    indicators = document["indicators"]
    assert isinstance(indicators, list)
    return {i["name"]: i for i in indicators}


def test_the_shipped_catalogue_lists_each_indicator_with_parameters_and_lookback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REGLEDGER_INDICATORS_CONFIG", raising=False)
    document = listed()
    assert (document["symbol"], document["overridden"]) == (None, False)
    specs = by_name(document)
    assert len(specs) == 107
    assert specs["RSI"] == {
        "name": "RSI", "group": "momentum", "inputs": ["close"],
        "parameters": {"timeperiod": 14}, "lookback": 14, "values": ["RSI"],
    }  # fmt: skip
    assert specs["MACD"] == {
        "name": "MACD", "group": "momentum", "inputs": ["close"],
        "parameters": {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}, "lookback": 33,
        "values": ["MACD.macd", "MACD.macdsignal", "MACD.macdhist"],
    }  # fmt: skip
    assert specs["OBV"]["inputs"] == ["close", "volume"]
    groups = {str(s["group"]) for s in specs.values()}
    assert groups == {"overlap", "momentum", "volatility", "volume", "price", "statistic"}
    table = CliRunner().invoke(cli, ["indicators", "list"])
    assert table.exit_code == 0
    assert "107 indicators (defaults)" in table.output


def test_a_symbol_gets_its_own_parameters_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = (Path(__file__).resolve().parents[2] / "streams" / "indicators.toml").read_text()
    config = tmp_path / "indicators.toml"
    config.write_text(shipped + '\n[symbols."DE0007164600".RSI]\ntimeperiod = 21\n')
    monkeypatch.setenv("REGLEDGER_INDICATORS_CONFIG", str(config))
    mine = listed("--symbol", "DE0007164600")
    assert mine["overridden"] is True
    assert by_name(mine)["RSI"]["parameters"] == {"timeperiod": 21}
    assert by_name(mine)["RSI"]["lookback"] == 21
    other = listed("--symbol", "US0378331005")
    assert (other["overridden"], by_name(other)["RSI"]["lookback"]) == (False, 14)


def test_a_bad_config_is_one_line_naming_indicator_parameter_and_value(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[defaults.RSI]\ntimeperiod = 1\n")
    result = CliRunner().invoke(cli, ["indicators", "list", "--config", str(config)])
    assert result.exit_code == 2
    assert result.output == (
        "Error: indicator 'RSI': timeperiod=1 is below TA-Lib's minimum, 2; fix the file, or "
        "point --config / REGLEDGER_INDICATORS_CONFIG at another\n"
    )
