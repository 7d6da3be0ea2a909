"""bench/soak_plot.py: a soak report's RSS samples become an SVG line plot (minutes, MiB, the
warm-up mark, the growth after warm-up in the title)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.soak_plot import main, svg

NS = {"svg": "http://www.w3.org/2000/svg"}


def small_report() -> dict:
    """20 samples 30 s apart: warm-up climbing 50 → 90 MiB, then 100 MiB, the last three at 110 MiB."""
    mib = [50, 60, 70, 80, 90] + [100] * 12 + [110] * 3
    return {"rss_kib": [[30.0 * i, m * 1024] for i, m in enumerate(mib)], "server_errors_5xx": 0}


def parsed(document: str) -> ET.Element:
    return ET.fromstring(document)  # well-formed XML, or this raises


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_the_plot_has_one_point_per_sample_in_order_and_higher_rss_is_higher() -> None:
    root = parsed(svg(small_report()))
    line = root.find("svg:polyline[@class='rss']", NS)
    assert line is not None
    points = [tuple(map(float, p.split(","))) for p in line.attrib["points"].split()]
    assert len(points) == 20
    xs = [p[0] for p in points]
    assert xs == sorted(xs) and len(set(xs)) == 20
    ys = [p[1] for p in points]
    assert ys[0] > ys[4] > ys[5]  # SVG y grows downward: the climb goes up the page
    assert ys[5] == ys[16] and ys[17] < ys[16]  # flat at 100 MiB, then up to 110


def test_axes_are_in_minutes_and_mib_and_the_title_gives_the_growth_after_warm_up() -> None:
    words = texts(parsed(svg(small_report())))
    assert words[0] == "mingyan soak, 10 min: RSS growth after warm-up +10.0%"  # 570 s; 100 → 110 MiB
    assert "minutes" in words and "RSS (MiB)" in words
    assert {"0", "2", "4", "6", "8", "10"} <= set(words)  # 0 … 9.5 minutes
    assert {"60", "80", "100"} <= set(words)  # 50 … 110 MiB
    reported = dict(small_report(), rss_growth_after_warmup=0.0213)  # the soak's own figure wins
    assert texts(parsed(svg(reported, "30-minute soak, SQLite")))[0] == (
        "30-minute soak, SQLite: RSS growth after warm-up +2.1%"
    )


def test_the_warm_up_mark_stands_at_the_first_sample_counted() -> None:
    root = parsed(svg(small_report()))
    points = root.find("svg:polyline[@class='rss']", NS).attrib["points"].split()
    mark = root.find("svg:line[@class='warmup']", NS)
    assert mark is not None
    assert mark.attrib["x1"] == mark.attrib["x2"] == points[5].split(",")[0]  # the sixth of 20 (a quarter)


def test_the_command_writes_the_svg_and_refuses_a_report_without_samples(tmp_path: Path, capsys) -> None:
    report = tmp_path / "soak.json"
    report.write_text(json.dumps(small_report()))
    assert main([str(report)]) == 0
    assert parsed((tmp_path / "soak.svg").read_text()).tag == "{http://www.w3.org/2000/svg}svg"
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"rss_kib": [[0.0, 1024]]}))
    assert main([str(empty), "--out", str(tmp_path / "empty.svg")]) == 1
    assert "fewer than two RSS samples" in capsys.readouterr().err
    assert not (tmp_path / "empty.svg").exists()


@pytest.mark.parametrize("bad", ["{not json", "[]"])
def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path, bad: str) -> None:
    report = tmp_path / "bad.json"
    report.write_text(bad)
    assert main([str(report)]) == 1
