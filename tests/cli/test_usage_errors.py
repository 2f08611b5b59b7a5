"""Every command's usage errors are one line on stderr and exit code 2, never a traceback.

The commands are found by walking the Typer app, so a command added later is covered without editing this file.
Registry names of every family (generator, inspector, encoder, selection model, bandit, simulator policy) that
are unknown, or constructor arguments that are wrong, are one-line errors too.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from adcreative.cli import app, main
from adcreative.core.errors import ConfigError, InputError


def _leaves(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in sorted(subs.items()):
            yield from _leaves(sub, [*path, name])
    else:
        yield path, cmd


LEAVES = list(_leaves(typer.main.get_command(app), []))
IDS = [" ".join(p) for p, _ in LEAVES]


def _annotation(param: Any) -> Any:
    """The parameter's Python type with ``| None`` removed (``int | None`` → ``int``)."""
    ann = param.type_descriptor.annotation
    if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        ann = args[0] if len(args) == 1 else ann
    return ann


def _is_argument(param: Any) -> bool:
    return type(param).__name__ == "TyperArgument"


def _run(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--home", str(tmp_path / "home"), *argv])
    out = capsys.readouterr()
    return code, out.err


def _one_line_usage_error(code: int, err: str, argv: list[str]) -> str:
    lines = err.strip().splitlines()
    assert code == 2, f"{argv}: exit {code}, stderr:\n{err}"
    assert len(lines) == 1, f"{argv}: {len(lines)} lines on stderr:\n{err}"
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_the_walk_finds_every_command() -> None:
    names = set(IDS)
    assert len(WITH_REQUIRED) >= 15 and len(FIXED_ARITY) == len(LEAVES)
    assert {"generate", "serve", "console", "demo", "products add", "inspect train", "select rank",
            "represent embed", "tune rfft", "dataset synth", "explain pair"} <= names
    assert len(LEAVES) >= 25


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=IDS)
def test_unknown_option(path: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*path, "--no-such-option"]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "--no-such-option" in line and f"adcreative {' '.join(path)} --help" in line


# bare, a command without required parameters would run: only those with some are called bare
WITH_REQUIRED = [(p, c) for p, c in LEAVES if any(q.required for q in c.params)]


@pytest.mark.parametrize(("path", "cmd"), WITH_REQUIRED, ids=[" ".join(p) for p, _ in WITH_REQUIRED])
def test_missing_required(path: list[str], cmd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_usage_error(*_run(path, tmp_path, capsys), path)
    assert "Missing" in line


FIXED_ARITY = [(p, c) for p, c in LEAVES if not any(_is_argument(q) and q.nargs == -1 for q in c.params)]


@pytest.mark.parametrize(("path", "cmd"), FIXED_ARITY, ids=[" ".join(p) for p, _ in FIXED_ARITY])
def test_extra_argument(path: list[str], cmd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [p for p in cmd.params if _is_argument(p)]
    # one positional more than it takes: the error comes while parsing, before the command can run
    argv = [*path, *["x"] * (len(args) + 1)]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "Missing" in line or "unexpected extra argument" in line


def _numeric_options() -> list[tuple[list[str], str, Any]]:
    out = []
    for path, cmd in LEAVES:
        for p in cmd.params:
            if not _is_argument(p) and not p.is_flag and _annotation(p) in (int, float):
                out.append((path, p.opts[0], p))
    return out


NUMERIC = _numeric_options()


def test_there_are_numeric_options() -> None:
    assert len(NUMERIC) > 40 and any(o == "--n" for _, o, _ in NUMERIC)


@pytest.mark.parametrize(("path", "opt", "param"), NUMERIC, ids=[f"{' '.join(p)} {o}" for p, o, _ in NUMERIC])
def test_non_numeric_value(path: list[str], opt: str, param: Any, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    # options given on the command line are checked first, so this fails before any missing option
    argv = [*path, opt, "abc"]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert f"Invalid value for '{opt}'" in line
    if getattr(param, "min", None) is not None:
        below = param.min - 1
        argv = [*path, opt, str(int(below) if _annotation(param) is int else below)]
        line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
        assert opt in line


FLOATS = [(p, o, q) for p, o, q in NUMERIC if _annotation(q) is float]


def test_there_are_float_options() -> None:
    assert len(FLOATS) > 15 and any(o == "--threshold" for _, o, _ in FLOATS)


@pytest.mark.parametrize(("path", "opt", "param"), FLOATS, ids=[f"{' '.join(p)} {o}" for p, o, _ in FLOATS])
def test_non_finite_value(path: list[str], opt: str, param: Any, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    # click parses nan and inf; nan passes every unchecked comparison and surfaced later as a traceback
    for value in ("nan", "inf", "-inf"):
        argv = [*path, opt, value]
        line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
        assert f"Invalid value for '{opt}'" in line
    assert not (tmp_path / "home").exists()


def test_training_and_synthesis_ranges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # each of these reached PIL, numpy or the optimizer before (a traceback), or ran for days
    out = str(tmp_path / "out")
    cases = [
        (["dataset", "synth", "--products", "sample", "--out", out, "--scale", "1e9"], "'--scale'"),
        (["dataset", "synth", "--products", "sample", "--out", out, "--per-class", "1000000000"], "'--per-class'"),
        (["dataset", "synth", "--products", "sample", "--out", out, "--colourways", "100000000"], "'--colourways'"),
        (["inspect", "train", "--data", out, "--out", out, "--lr", "-1"], "'--lr'"),
        (["inspect", "baselines", "--data", out, "--lr", "-1"], "'--lr'"),
    ]
    for argv, expected in cases:
        assert expected in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert sorted(tmp_path.iterdir()) == []


def _path_params() -> list[tuple[list[str], str, Any]]:
    out = []
    for path, cmd in LEAVES:
        for p in cmd.params:
            ann = _annotation(p)
            if Path in (ann, *typing.get_args(ann)):
                out.append((path, p.name if _is_argument(p) else p.opts[0], p))
    return out


PATHS = _path_params()


def test_there_are_path_options_and_arguments() -> None:
    assert len(PATHS) > 40 and any(o == "--out" for _, o, _ in PATHS) and any(_is_argument(p) for *_, p in PATHS)


@pytest.mark.parametrize(("path", "opt", "param"), PATHS, ids=[f"{' '.join(p)} {o}" for p, o, _ in PATHS])
def test_empty_path(path: list[str], opt: str, param: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Path("") is the current folder: an empty variable in a script must not read or write where it ran
    monkeypatch.chdir(tmp_path)
    cmd = dict((tuple(p), c) for p, c in LEAVES)[tuple(path)]
    args = ["" if q is param else "x" for q in cmd.params if _is_argument(q)]  # the others given, this one empty
    argv = [*path, *args] if _is_argument(param) else [*path, opt, ""]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "an empty path" in line and opt in line
    assert sorted(tmp_path.iterdir()) == []  # nothing written, not even the store


@pytest.mark.parametrize(("path", "opt", "param"), PATHS, ids=[f"{' '.join(p)} {o}" for p, o, _ in PATHS])
def test_path_under_a_file(path: list[str], opt: str, param: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    # nothing can be read or written under a file: mkdir's FileExistsError / NotADirectoryError tracebacks named
    # neither the option nor the culprit (and `inspect train` trained a whole model first)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.txt").write_text("keep")
    cmd = dict((tuple(p), c) for p, c in LEAVES)[tuple(path)]
    args = ["f.txt/x" if q is param else "x" for q in cmd.params if _is_argument(q)]
    argv = [*path, *args] if _is_argument(param) else [*path, opt, "f.txt/x"]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "'f.txt/x' lies under 'f.txt', which is a file" in line
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.txt"] and (tmp_path / "f.txt").read_text() == "keep"


def test_folder_and_file_outputs_are_declared() -> None:
    # an --out folder given an existing file (or a file given a folder) is refused while parsing, by click's Path
    outs = [(p, q) for p, o, q in PATHS if o in ("--out", "--save", "--previews", "--report", "--png")]
    assert len(outs) >= 25
    undeclared = [" ".join(p) + " " + q.opts[0] for p, q in outs
                  if q.type_descriptor.parameter_info.file_okay == q.type_descriptor.parameter_info.dir_okay
                  and not (p == ["inspect", "baselines"] and q.opts[0] == "--out")]  # a file, or a folder with --loro
    assert not undeclared, undeclared


def test_an_empty_home_is_refused_and_an_empty_home_variable_is_unset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["--home", " ", "products", "list"]) == 2
    assert "'--home'" in capsys.readouterr().err and sorted(tmp_path.iterdir()) == []
    monkeypatch.setenv("ADCREATIVE_HOME", "")
    assert main(["products", "list"]) == 2  # reads the default home, not the folder itself, and creates nothing
    assert "no store at .adcreative:" in capsys.readouterr().err and sorted(tmp_path.iterdir()) == []
    assert main(["products", "sample"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [".adcreative"]


def test_unknown_command_and_bare_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_usage_error(*_run(["nosuch"], tmp_path, capsys), ["nosuch"])
    assert "No such command 'nosuch'" in line and "adcreative --help" in line
    line = _one_line_usage_error(*_run(["select", "nosuch"], tmp_path, capsys), ["select", "nosuch"])
    assert "adcreative select --help" in line
    # a bare group prints its help (exit 2, as click does), never a traceback
    capsys.readouterr()
    code = main(["select"])
    out = capsys.readouterr()
    assert code == 2 and "Traceback" not in out.err and "simulate" in out.out + out.err


# ------------------------------------------------------------------------------ registry names ------------
def _saved_folder(tmp_path: Path, name: str, cfg: dict[str, Any]) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "model.safetensors").write_bytes(b"")
    return d


def test_unknown_generator_and_missing_generator_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "--product", "x", "--generator", "foo"]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "unknown generator 'foo'" in line and "compositor" in line
    argv = ["generate", "--product", "x", "--generator", "diffusers-inpaint"]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "'base'" in line and "--gen-config" in line and "required: base, controlnet" in line
    argv = ["generate", "--product", "x", "--gen-config", '{"scale": 1, "nosuch": 2}']
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "unexpected keyword argument 'nosuch'" in line
    argv = ["generate", "--product", "x", "--gen-config", "[1, 2]"]
    assert "JSON object" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert not (tmp_path / "home").exists()  # a usage error wrote no store


def test_unknown_inspector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["inspect", "train", "--model", "foo", "--out", str(tmp_path / "m")]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "unknown inspector 'foo'" in line and "rfnet" in line
    # a saved folder that names an unknown inspector, or another family's model
    bad = _saved_folder(tmp_path, "insp", {"_registry": {"family": "inspector", "name": "foo"}})
    argv = ["inspect", "eval", "--model", str(bad), "--data", str(tmp_path)]
    assert "names no registered inspector" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    enc = _saved_folder(tmp_path, "enc", {"_registry": {"family": "encoder", "name": "moco-effnet-minilm"}})
    argv = ["inspect", "eval", "--model", str(enc), "--data", str(tmp_path)]
    assert "not a 'inspector' one" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)


def test_unknown_encoder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _saved_folder(tmp_path, "enc", {"_registry": {"family": "encoder", "name": "foo"}})
    argv = ["represent", "embed", "--model", str(bad)]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "names no registered encoder" in line and "moco-effnet-minilm" in line


def test_unknown_simulator_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["select", "simulate", "--policies", "ours,foo", "--images", str(tmp_path)]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert "unknown policy 'foo'" in line and "oracle" in line


def test_unknown_selection_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["serve", "--model", str(tmp_path)],
                 ["select", "rank", "--model", str(tmp_path), "--ad", "a", "--candidates", "x"]):
        assert "not a selection bundle" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)


@pytest.mark.parametrize("family", ["generator", "inspector", "encoder", "selection model", "policy"])
def test_every_registry_refuses_unknown_names_and_wrong_arguments(family: str, tmp_path: Path) -> None:
    from adcreative.generate.base import GENERATORS
    from adcreative.inspect.base import INSPECTORS
    from adcreative.represent.encoder import ENCODERS
    from adcreative.select import POLICIES, SELECT_MODELS

    reg: Any = {r.family: r for r in (GENERATORS, INSPECTORS, ENCODERS, SELECT_MODELS, POLICIES)}[family]
    with pytest.raises(InputError, match=f"unknown {family} 'nosuch'; registered: "):
        reg.create("nosuch")
    name = reg.names()[0]
    with pytest.raises(ConfigError, match=f"{family} '{name}'.*(unexpected keyword argument 'nosuch'|missing a required argument)"):
        reg.create(name, nosuch=1)
    bad = _saved_folder(tmp_path, "m", {"_registry": {"family": family, "name": "nosuch"}})
    with pytest.raises(InputError, match=f"names no registered {family}"):
        reg.load(bad)


def test_a_constructor_that_refuses_a_value_is_a_config_error() -> None:
    from adcreative.select import create_policy

    with pytest.raises(ConfigError, match="policy 'beta_visual'"):
        create_policy("beta_visual")  # n_features is required
    with pytest.raises(ConfigError, match="refused its arguments"):
        create_policy("beta_visual", n_features="many")


def test_empty_product_lists_and_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an empty source read as a folder would be this one
    for product in ("", ",", " , "):
        argv = ["generate", "--product", product]
        assert "--product names no product" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert sorted(tmp_path.iterdir()) == []  # refused before any store is made
    argv = ["dataset", "synth", "--products", "", "--out", str(tmp_path / "ds")]
    assert "--products: an empty source" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert not (tmp_path / "ds").exists()
    # 'all' in a store without products used to generate nothing and exit 0; where no store exists, it used to
    # create one before refusing
    argv = ["generate", "--product", "all"]
    assert "no store at" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert not (tmp_path / "home").exists()
    from adcreative.core.store import Store

    Store(home=tmp_path / "home").close()
    assert "the store has no products" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)


@pytest.mark.parametrize("argv", [["products", "list"], ["products", "show", "p"], ["creatives", "list"],
                                  ["creatives", "show", "c"], ["generate", "--product", "p"],
                                  ["dataset", "export-labels", "--out", "labels"], ["inspect", "sources"],
                                  ["explain", "pairs", "--from-store", "--out", "pairs.jsonl"]])
def test_a_reading_command_on_a_home_without_a_store_creates_nothing(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # a mistyped --home used to leave a new, empty database behind and then say "no product with id 'p'"
    monkeypatch.chdir(tmp_path)
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert f"no store at {tmp_path / 'home'}: nothing has been added there yet" in line
    assert sorted(tmp_path.iterdir()) == []


def test_db_upgrade_on_a_home_without_a_store_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # it created a new store there and reported "upgraded new → 0005" (a mistyped --home)
    argv = ["db", "upgrade"]
    line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert f"no store at {tmp_path / 'home'}: nothing to upgrade" in line
    assert sorted(tmp_path.iterdir()) == []


def test_seeds_and_counts_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a negative seed reached numpy (a traceback); --seeds "x" reached int() (a traceback); a billion images ran
    cases = [
        (["generate", "--product", "p", "--seed", "-5"], "Invalid value for '--seed'"),
        (["generate", "--product", "p", "--seed", str(2**31)], "Invalid value for '--seed'"),
        (["inspect", "train", "--data", "d", "--out", "o", "--seed", "-1"], "Invalid value for '--seed'"),
        (["select", "obd", "--data", str(tmp_path), "--seeds", "x"], "--seeds must be comma-separated integers"),
        (["select", "simulate", "--seeds", "0,-1"], "--seeds: seeds are integers in [0, 2147483647], got -1"),
        (["select", "coldstart", "--seeds", " , "], "--seeds is empty"),
    ]
    for argv, expected in cases:
        assert expected in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert not (tmp_path / "home").exists()
    # in a store with the product: refused before the first image, so nothing is stored
    assert main(["--home", str(tmp_path / "home"), "products", "sample"]) == 0
    pid = "citrus-can"
    cases = [
        (["generate", "--product", pid, "--n", "1000000000"], "--n is at most 10000 images per aspect ratio"),
        (["generate", "--product", pid, "--n", "3", "--seed", str(2**31 - 2)], "must lie in [0, 2147483647]"),
        (["generate", "--product", pid, "--until-available", "1", "--max-attempts", "1000000"],
         "--max-attempts is at most 10000"),
        (["generate", "--product", pid, "--until-available", "1", "--seed", str(2**31 - 5)],
         "the attempts' seeds"),
    ]
    for argv, expected in cases:
        assert expected in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    capsys.readouterr()
    assert main(["--home", str(tmp_path / "home"), "creatives", "list"]) == 0
    assert capsys.readouterr().out.strip() == ""


def test_generate_refuses_what_it_would_ignore_or_wait_on_forever(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # --executor spark was a traceback; --workers 0 with Ray waited forever for an actor; --aspect "" generated
    # nothing and exited 0; --threshold 2 was taken; recurrent-only options without --until-available were ignored
    cases = [
        (["generate", "--product", "p", "--executor", "spark"], "unknown executor 'spark'; choose local or ray"),
        (["generate", "--product", "p", "--executor", "ray", "--workers", "0"], "--workers must be at least 1, got 0"),
        (["generate", "--product", "p", "--aspect", " , "], "--aspect names no aspect ratio"),
        (["generate", "--product", "p", "--until-available", "1", "--threshold", "2"],
         "--threshold is a probability between 0 and 1, got 2"),
        (["generate", "--product", "p", "--threshold", "0.5"],
         "--threshold only applies to recurrent generation: add --until-available K"),
        (["generate", "--product", "p", "--inspector", "x", "--max-attempts", "3"],
         "--max-attempts, --inspector only apply to recurrent generation"),
        (["generate", "--product", "p", "--adapt-prior"], "--adapt-prior only applies to recurrent generation"),
    ]
    for argv, expected in cases:
        assert expected in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert not (tmp_path / "home").exists()


def test_a_home_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    # `--home FILE products sample` was mkdir's FileExistsError traceback
    (tmp_path / "home").write_text("keep")
    for argv in (["products", "sample"], ["products", "list"]):
        assert "is a file" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    monkeypatch.setenv("ADCREATIVE_HOME", str(tmp_path / "home"))
    capsys.readouterr()
    assert main(["products", "sample"]) == 2 and "ADCREATIVE_HOME" in capsys.readouterr().err
    assert (tmp_path / "home").read_text() == "keep"
    from adcreative.core.store import Store

    with pytest.raises(InputError, match="is a file, not a folder"):
        Store(home=tmp_path / "home")


@pytest.mark.sqlite_only  # the home's database file is SQLite's
def test_a_store_file_that_is_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a file that is not a database at the home's database path was an sqlalchemy traceback
    home = tmp_path / "home"
    home.mkdir()
    (home / "adcreative.db").write_text("not a database")
    for argv in (["products", "list"], ["products", "sample"]):
        line = _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
        assert "cannot open the store at sqlite:///" in line and "file is not a database" in line
    assert (home / "adcreative.db").read_text() == "not a database"


@pytest.mark.parametrize(("url", "needle"), [
    ("notaurl", "ADCREATIVE_DATABASE_URL is not a database URL"),                       # an ArgumentError traceback
    ("mysql://u@h/db", "ADCREATIVE_DATABASE_URL names a mysql database; the store runs on sqlite or postgresql"),
])
def test_a_database_url_the_store_cannot_use(url: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCREATIVE_DATABASE_URL", url)
    for argv in (["products", "list"], ["products", "sample"]):
        assert needle in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert not (tmp_path / "home").exists()


def test_paths_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path / "home"), "products", "sample"]) == 0
    # an output path that is a folder, or under a file, was an OSError traceback naming a temporary file
    (tmp_path / "file").write_text("x")
    for out, needle in [(tmp_path, f"file '{tmp_path}' is a directory"),
                        (tmp_path / "file" / "p.png", f"'{tmp_path / 'file' / 'p.png'}' lies under '{tmp_path / 'file'}', "
                                                      "which is a file")]:
        argv = ["products", "show", "citrus-can", "--matte", "--out", str(out)]
        assert needle in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    # what the system refuses (here a name too long for the file system): one line naming the path, exit 1
    code, err = _run(["products", "show", "citrus-can", "--matte", "--out", str(tmp_path / ("a" * 300 + ".png"))],
                     tmp_path, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "File name too long" in err and "Traceback" not in err


def test_demo_into_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # mkdir's FileExistsError traceback (the store is made inside the report folder first)
    (tmp_path / "file").write_text("keep")
    for out, needle in ((tmp_path / "file", "is a file"), (tmp_path / "file" / "sub", "which is a file")):
        argv = ["demo", "--fast", "--out", str(out)]
        assert needle in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert (tmp_path / "file").read_text() == "keep"


def test_serving_on_an_address_this_machine_cannot_listen_on(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # uvicorn printed the banner, logged "address already in use" / "Name or service not known" and exited 1 or 3
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        for argv, needle in [(["serve", "--model", "m", "--port", port], f"cannot serve on 127.0.0.1:{port}: "),
                             (["console", "--port", port], f"cannot serve on 127.0.0.1:{port}: "),
                             (["serve", "--model", "m", "--host", "no-such-host.invalid"], "cannot serve on no-such")]:
            assert needle in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    assert not (tmp_path / "home").exists()


def test_scoring_an_unknown_product_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path / "home"), "products", "sample"]) == 0
    argv = ["inspect", "run", "--product", "nope"]  # said "nothing to score" and exited 0
    assert "no product with id 'nope'" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)
    capsys.readouterr()
    assert main(["--home", str(tmp_path / "home"), "inspect", "run", "--product", "citrus-can"]) == 0
    assert "nothing to score" in capsys.readouterr().out  # a known product without creatives
    argv = ["inspect", "run", "--run", "nope"]  # said "nothing to score" and exited 0
    assert "no creatives of generation run 'nope'" in _one_line_usage_error(*_run(argv, tmp_path, capsys), argv)


def test_the_cli_seed_limit_is_the_store_column_limit() -> None:
    from adcreative.cli.common import SEED_MAX
    from adcreative.core.limits import INT_MAX

    assert SEED_MAX == INT_MAX  # written out in cli.common so that `--help` does not import pydantic
