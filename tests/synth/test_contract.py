"""The generator's contract: every command's options are the contract's, requests survive the
command line and JSON, limits name their option, and the contract stays light."""

from __future__ import annotations

import argparse
import ast
import doctest
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest

import synth.contract
from study.imaging.types import Lesion, Sequence
from synth.cli import main, parser
from synth.contract import (
    DEFAULT_SAMPLING,
    LESION_PHRASES,
    LESION_WORDS,
    PRESETS,
    REQUESTS,
    SEQUENCE_NAMES,
    SEQUENCE_WORDS,
    AugmentRequest,
    CheckpointInfo,
    EvaluateRequest,
    OptionSpec,
    Preset,
    Request,
    SampleRequest,
    Sampling,
    TrainingPatients,
    TrainRequest,
    TrainSettings,
    format_progress_event,
    option_specs,
    parse_progress_line,
    prompt_for,
    read_checkpoint_info,
    request_from_args,
)
from synth.errors import SynthError

ROOT = Path(__file__).resolve().parents[2]
# What neither the contract nor `python -m synth --help` may load.
HEAVY = (
    "torch",
    "diffusers",
    "accelerate",
    "safetensors",
    "pandas",
    "PIL",
    "sklearn",
    "scipy",
    "nibabel",
    "pydicom",
    "SimpleITK",
    "tqdm",
    "sqlalchemy",
    "alembic",
    "streamlit",
)


def command_parser(request: type[Request]) -> argparse.ArgumentParser:
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[request.command]


def example_text(spec: OptionSpec) -> str:
    """Text the command line should turn into a value of the option's type."""
    if spec.choices:
        return str(spec.choices[-1])
    return {int: "3", float: "0.5", Path: "some/where", Sequence: "hbv", Lesion: "unknown"}.get(
        spec.type, "text"
    )


def test_every_command_is_a_request_of_the_contract() -> None:
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {request.command for request in REQUESTS}


@pytest.mark.parametrize("request_type", REQUESTS, ids=lambda r: r.command)
def test_a_commands_options_are_exactly_its_requests(request_type: type[Request]) -> None:
    """Flags, defaults, choices, required-ness and types: an option added or changed by hand in
    a command module, or a declaration the command does not follow, fails here."""
    actions = {
        action.dest: action
        for action in command_parser(request_type)._actions
        if not isinstance(action, argparse._HelpAction)
    }
    specs = {spec.name: spec for spec in option_specs(request_type)}
    assert set(actions) == set(specs)
    for name, spec in specs.items():
        action = actions[name]
        assert action.option_strings == [spec.flag], name
        assert action.required == spec.required, name
        assert action.help == spec.help_text.replace("%", "%%"), name
        if spec.type is bool:
            assert isinstance(action, argparse._StoreTrueAction) and spec.default is False, name
            continue
        assert action.default == spec.default, name
        assert tuple(action.choices or ()) == spec.choices, name
        assert isinstance(action.type(example_text(spec)), spec.type), name


def example(request_type: type[Request]) -> Request:
    """A request with every option set, to values other than the defaults where it can."""
    values: dict[str, Any] = {}
    for spec in option_specs(request_type):
        if spec.choices:
            values[spec.name] = next(c for c in reversed(spec.choices) if c != spec.default)
        elif spec.type is bool:
            values[spec.name] = True
        elif spec.type is int:
            low = 7 if spec.min is None else max(7, int(spec.min) + 1)
            values[spec.name] = low if spec.max is None else int(spec.max) - 1
        elif spec.type is float:
            values[spec.name] = 0.25
        elif spec.type is Path:
            values[spec.name] = Path("/data") / spec.name
        elif spec.type is Sequence:
            values[spec.name] = Sequence.DWI
        elif spec.type is Lesion:
            values[spec.name] = Lesion.UNKNOWN
        else:
            values[spec.name] = "-weighted prompt, with 'quotes' and --dashes"
    return request_type(**values)


@pytest.mark.parametrize("request_type", REQUESTS, ids=lambda r: r.command)
def test_a_requests_command_line_parses_back_to_the_same_request(
    request_type: type[Request],
) -> None:
    for request in (example(request_type), minimal(request_type)):
        args = parser().parse_args(request.to_args())
        assert args.command == request_type.command
        assert request_from_args(request_type, args) == request


def minimal(request_type: type[Request]) -> Request:
    """A request with its required options only."""
    given = example(request_type)
    return request_type(
        **{spec.name: getattr(given, spec.name) for spec in option_specs(request_type)}
        | {spec.name: spec.default for spec in option_specs(request_type) if not spec.required}
    )


@pytest.mark.parametrize("request_type", REQUESTS, ids=lambda r: r.command)
def test_a_request_survives_json(request_type: type[Request]) -> None:
    request = example(request_type)
    assert request_type.from_json(json.loads(json.dumps(request.to_json()))) == request
    with pytest.raises(SynthError, match="no option colour"):
        request_type.from_json(request.to_json() | {"colour": "red"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 0}, "--steps must be at least 1, not 0"),
        ({"lr": 0.0}, "--lr must be positive, not 0.0"),
        ({"lesion_share": 1.0}, r"--lesion-share must be in \(0, 1\), not 1.0"),
        ({"size": 16}, "--size must be from 32 to 256, not 16"),
        ({"warmup_steps": -1}, "--warmup must be at least 0, not -1"),
        ({"max_minutes": float("nan")}, "--max-minutes must be positive, not nan"),
        ({"model": "huge"}, "--model must be one of tiny, small, default, not huge"),
        ({"steps": "5"}, "--steps takes int values, not '5'"),
        ({"batch": True}, "--batch takes int values, not True"),
        ({"out": None}, "--out is required"),
    ],
)
def test_limits_are_checked_and_the_option_named(changes: dict, message: str) -> None:
    with pytest.raises(SynthError, match=message):
        TrainRequest(**{"out": Path("ckpt"), **changes})


def test_the_command_line_reports_a_value_out_of_limits_on_one_line(capsys) -> None:
    code = main(["sample", "--checkpoint", "c", "--prompt", "T2", "--out", "o", "--n", "0"])
    assert code == 1
    assert capsys.readouterr().err == "error: --n must be at least 1, not 0\n"


def test_training_settings_and_where_they_apply_make_a_train_request() -> None:
    settings = TrainSettings(model="tiny", steps=30, batch=2)
    request = TrainRequest.from_settings(settings, manifest=Path("m.csv"), out=Path("ckpt"))
    assert (request.model, request.steps, request.batch, request.lr) == ("tiny", 30, 2, 2e-4)
    assert request.to_args()[:7] == ["train", "--model", "tiny", "--steps", "30", "--batch", "2"]


def test_sampling_is_the_requests_then_the_checkpoints_then_the_defaults() -> None:
    student = Sampling("ddim", 4, 1.0)

    def request(**asked: Any) -> SampleRequest:
        return SampleRequest(checkpoint=Path("c"), prompt="T2", out=Path("o"), **asked)

    assert request().sampling(None) == DEFAULT_SAMPLING == Sampling("dpmpp", 20, 3.0)
    assert request().sampling(student) == student
    assert request(sampler="dpmpp").sampling(student) == Sampling("dpmpp", 20, 1.0)
    assert request(steps=8, guidance=2.0).sampling(student) == Sampling("ddim", 8, 2.0)
    assert request(sampler="ddim").sampling(None) == Sampling("ddim", 50, 3.0)


def test_checkpoint_info_is_read_from_config_json(tmp_path: Path) -> None:
    training = {"steps": 40, "date": "2025-01-02", "training_manifest_sha256": "ab" * 32}
    student = training | {
        "distilled_from": "cd" * 32,
        "sampling": {"sampler": "ddim", "steps": 4, "guidance": 1.0},
    }
    for name, section in (("teacher", training), ("student", student)):
        (tmp_path / name).mkdir()
        document = {
            "format": "vtt-synth/1",
            "model": {"preset": "tiny", "image_size": 32},
            "training": section,
        }
        (tmp_path / name / "config.json").write_text(json.dumps(document))
    assert read_checkpoint_info(tmp_path / "teacher") == CheckpointInfo(
        name="teacher",
        path=tmp_path / "teacher",
        preset="tiny",
        image_size=32,
        steps=40,
        date="2025-01-02",
        training_manifest_sha256="ab" * 32,
    )
    info = read_checkpoint_info(tmp_path / "student", "my student")
    assert info.name == "my student" and info.distilled_from == "cd" * 32
    assert info.recommended_sampling() == info.sampling == Sampling("ddim", 4, 1.0)
    assert read_checkpoint_info(tmp_path / "teacher").recommended_sampling() == DEFAULT_SAMPLING
    with pytest.raises(SynthError, match="is not a checkpoint"):
        read_checkpoint_info(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "other/2"}')
    with pytest.raises(SynthError, match="format 'other/2', expected 'vtt-synth/1'"):
        read_checkpoint_info(tmp_path)


def test_the_contracts_examples_hold() -> None:
    assert doctest.testmod(synth.contract).failed == 0


def test_a_checkpoint_records_its_training_patients_as_salted_digests(tmp_path: Path) -> None:
    patients = TrainingPatients.of(["P-2", "P-1", "", "P-2"], salt="ab" * 32)
    assert len(patients) == 2 and "P-1" in patients and "P-3" not in patients
    recorded = patients.to_json()
    assert recorded["count"] == 2 and recorded["salt"] == "ab" * 32
    assert recorded["sha256"] == sorted(recorded["sha256"])
    assert not any("P-1" in digest for digest in recorded["sha256"])
    # Salted: the same patient's digest differs between checkpoints trained on other data.
    assert TrainingPatients.of(["P-1"], salt="cd" * 32).sha256.isdisjoint(patients.sha256)
    document = {
        "format": "vtt-synth/1",
        "model": {"preset": "tiny", "image_size": 32},
        "training": {"steps": 2, "patients": json.loads(json.dumps(recorded))},
    }
    (tmp_path / "config.json").write_text(json.dumps(document))
    assert read_checkpoint_info(tmp_path).training_patients == patients
    document["training"].pop("patients")
    (tmp_path / "config.json").write_text(json.dumps(document))
    assert read_checkpoint_info(tmp_path).training_patients is None


def test_augment_trains_the_default_or_the_quick_classifier_unless_told() -> None:
    def request(**options: Any) -> AugmentRequest:
        return AugmentRequest(real=Path("r.csv"), synthetic=Path("s.csv"), **options)

    assert request().classifier_training() == (8, 128)
    assert request(quick=True).classifier_training() == (2, 64)
    assert request(quick=True, epochs=5, lesion_size=96).classifier_training() == (5, 96)
    for options, message in (
        ({"folds": 1}, "--folds must be at least 2, not 1"),
        ({"repeats": 0}, "--repeats must be at least 1, not 0"),
        ({"lesion_field": 0.0}, r"--lesion-field must be in \(0, 1\], not 0.0"),
    ):
        with pytest.raises(SynthError, match=message):
            request(**options)


def test_progress_lines_round_trip_and_other_lines_are_not_events() -> None:
    line = format_progress_event("progress", 200, 1000, "step", loss=0.0412)
    assert json.loads(line) == {
        "event": "progress",
        "done": 200,
        "total": 1000,
        "unit": "step",
        "loss": 0.0412,
    }
    assert parse_progress_line(line + "\n") == json.loads(line)
    assert parse_progress_line(format_progress_event("done", 3, 3, "step"))["event"] == "done"
    for other in ("saved checkpoint", "{not json", '{"event": "log"}', '{"event": "done"}', "[1]"):
        assert parse_progress_line(other) is None


def test_the_apps_prompt_words_are_words_the_encoder_learned() -> None:
    from synth.text import parse_prompt

    for sequence, word in SEQUENCE_WORDS.items():
        assert word in SEQUENCE_NAMES[sequence]
    for lesion, words in LESION_WORDS.items():
        assert words in LESION_PHRASES[lesion]
    assert prompt_for(Sequence.T2W, Lesion.YES) == "A T2 image of a prostate with a lesion"
    assert prompt_for(Sequence.DWI, Lesion.UNKNOWN, "{sequence} of {lesion}") == "DWI of"
    for sequence in (Sequence.T2W, Sequence.ADC, Sequence.DWI):
        for lesion in (Lesion.YES, Lesion.NO):
            assert parse_prompt(prompt_for(sequence, lesion)) == (sequence, lesion)
    with pytest.raises(SynthError, match=re.escape("only {sequence} and {lesion}")):
        prompt_for(Sequence.T2W, Lesion.NO, "{sequence} {colour}")


def test_the_presets_are_the_models() -> None:
    from synth.model import PRESETS as MODELS

    assert list(MODELS) == list(PRESETS) == list(get_args(Preset))


def run_python(code: str) -> str:
    finished = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return finished.stdout


def test_the_contract_adds_only_the_standard_library_to_the_imaging_types() -> None:
    loaded = run_python(
        "import sys, study.imaging.types\n"
        "before = set(sys.modules)\n"
        "import synth.contract\n"
        "print(sorted(set(sys.modules) - before))\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    ).splitlines()
    added = ast.literal_eval(loaded[0])
    outside = [
        name
        for name in added
        if name.split(".")[0] not in sys.stdlib_module_names
        and name not in ("synth", "synth.contract", "synth.errors")
    ]
    assert outside == []
    assert ast.literal_eval(loaded[1]) == []


def test_the_command_line_is_built_without_the_heavy_libraries() -> None:
    """`python -m synth <command> --help` parses before any command's run imports them."""
    loaded = run_python(
        "import sys\n"
        "from synth.cli import parser\n"
        "parser()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    assert loaded.strip() == "[]"


def imported_names(path: Path) -> set[str]:
    """What a file imports, as dotted names (`from a import b` gives a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_app_imports_nothing_of_the_generator_but_its_contract() -> None:
    files = [*(ROOT / "study").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]
    for path in files:
        of_synth = [name for name in imported_names(path) if name.split(".")[0] == "synth"]
        assert all(name.startswith("synth.contract") for name in of_synth), (path, of_synth)


def test_a_request_runs_as_python_m_synth_with_its_arguments() -> None:
    request = EvaluateRequest(real=Path("r.csv"), synthetic=Path("s.csv"))
    assert request.command_line() == [sys.executable, "-m", "synth", *request.to_args()]
