"""Our manifest.jsonl layout: malformed lines are refused with the line number, never read as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adcreative.core.errors import InputError
from adcreative.inspect.datasets.formats import Sample, read_dataset, write_manifest


def _write(d: Path, **change: object) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    good = Sample(id="a", image=d / "a.png", mask=None, product=None, product_id="p", title="Red kettle",
                  category="kitchen", label="available", split="train")
    write_manifest(d, [good, Sample(**{**good.__dict__, "id": "b", "image": d / "b.png"})])
    lines = (d / "manifest.jsonl").read_text().splitlines()
    second = {**json.loads(lines[1]), **change}
    (d / "manifest.jsonl").write_text(lines[0] + "\n" + json.dumps(second) + "\n")  # NaN is written as NaN
    return d


def test_a_good_manifest_reads_with_null_mask_and_product(tmp_path: Path) -> None:
    samples = read_dataset(_write(tmp_path / "ok"))
    assert [s.id for s in samples] == ["a", "b"] and samples[1].mask is None and samples[1].product is None


@pytest.mark.parametrize(("change", "message"), [
    ({"title": float("nan")}, "line 2: title must be a string, got nan"),
    ({"title": None}, "line 2: title must be a string, got None"),
    ({"category": 3}, "line 2: category must be a string, got 3"),
    ({"split": ["train"]}, "line 2: split must be a string"),
    ({"severity": float("nan")}, "line 2: severity must be a finite number"),
    ({"severity": "high"}, "line 2: severity must be a finite number"),
    ({"label": "great"}, "line 2: unknown label 'great'"),
    ({"nosuch": 1}, "line 2: malformed sample"),
])
def test_a_malformed_line_is_refused_by_number(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=r"manifest\.jsonl") as e:
        read_dataset(_write(tmp_path / "d", **change))
    assert message in str(e.value)
