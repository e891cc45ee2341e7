"""FROC figures of merit and their OR analysis: against RJafroc 2.1.3 on the Thompson data
(../shared/data/froc/dataset05-thompson), a hand-computed study, and a brute-force
re-computation of every leave-one-out value from the definitions."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from study.stats import FROC_FOMS, StatsError
from study.stats.froc import FrocData, read_froc
from study.stats.froc_analysis import FrocResult, froc_analysis, froc_json
from study.stats.froc_foms import ALIASES, fom_name, froc_fom

# Which cases each figure's jackknife leaves out (RJafroc; the README of the reference data).
DROPPED = {
    "wAFROC": "all",
    "AFROC": "all",
    "wAFROC1": "all",
    "AFROC1": "all",
    "HrAuc": "all",
    "MaxNLFAllCases": "all",
    "MaxLLF": "positive",
    "HrSe": "positive",
    "MaxNLF": "negative",
    "HrSp": "negative",
}


@pytest.fixture(scope="module")
def thompson_dir(shared_data: Path) -> Path:
    return shared_data / "froc" / "dataset05-thompson"


@pytest.fixture(scope="module")
def reference(thompson_dir: Path) -> dict:
    return json.loads((thompson_dir / "reference.json").read_text())


@pytest.fixture(scope="module")
def thompson(thompson_dir: Path) -> FrocData:
    return read_froc(thompson_dir / "marks.csv", thompson_dir / "truth.csv")


def agrees(value: float, shown: str) -> bool:
    """`value` rounds to R's printed digits (within half a unit of the last printed place)."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(value - float(shown)) <= 0.5 * 10**-decimals * (1 + 1e-9)


def by_reader(rows: list[dict], data: FrocData) -> np.ndarray:
    table = {(row["treatment"], row["reader"]): row["fom"] for row in rows}
    return np.array([[table[t, r] for r in data.readers] for t in data.treatments])


# ---- the Thompson data against RJafroc -----------------------------------------------------


def test_thompson_data_are_read_as_described(thompson: FrocData, reference: dict) -> None:
    described = reference["dataset"]
    assert thompson.treatments == tuple(described["treatments"])
    assert thompson.readers == tuple(described["readers"])
    assert len(thompson.cases) == described["cases"] == 92
    assert int((~thompson.abnormal).sum()) == described["normal_cases"]
    assert len(thompson.truth.lesion_case) == described["lesions"]
    assert int(thompson.nl_count.sum()) == described["nl_marks"]
    assert int(np.isfinite(thompson.ll).sum()) == described["ll_marks"]
    assert int(thompson.nl_count.max()) == described["max_nl_marks_per_case"]
    # Each abnormal case's weights sum to 1; RJafroc's are equal.
    sums = np.bincount(thompson.truth.lesion_case, thompson.truth.lesion_weight, minlength=92)
    assert sums[thompson.abnormal] == pytest.approx(1, abs=1e-15)


@pytest.mark.parametrize("name", FROC_FOMS)
def test_per_reader_foms_match_rjafroc(thompson: FrocData, reference: dict, name: str) -> None:
    figure = froc_fom(thompson, name)
    expected = by_reader(reference["foms"][name], thompson)
    assert np.abs(figure.values - expected).max() < 1e-12
    assert figure.dropped == DROPPED[name]
    k = {"all": 92, "positive": 47, "negative": 45}[DROPPED[name]]
    assert figure.left_out.shape == (2, 9, k)


def dbm_mean_squares(values: np.ndarray, left_out: np.ndarray) -> dict[str, float]:
    """DBM mean squares of RJafroc's centred jackknife pseudovalues (k theta - (k-1) theta_(k),
    shifted so that their mean over the cases is theta)."""
    t, r, k = left_out.shape
    pv = k * values[..., None] - (k - 1) * left_out
    pv = pv - pv.mean(axis=2, keepdims=True) + values[..., None]
    g = pv.mean()
    m_t, m_r, m_c = pv.mean(axis=(1, 2)), pv.mean(axis=(0, 2)), pv.mean(axis=(0, 1))
    m_tr, m_tc, m_rc = pv.mean(axis=2), pv.mean(axis=1), pv.mean(axis=0)
    residual = (
        pv
        - m_tr[:, :, None]
        - m_tc[:, None, :]
        - m_rc[None, :, :]
        + m_t[:, None, None]
        + m_r[None, :, None]
        + m_c[None, None, :]
        - g
    )
    return {
        "msT": r * k * ((m_t - g) ** 2).sum() / (t - 1),
        "msR": t * k * ((m_r - g) ** 2).sum() / (r - 1),
        "msC": t * r * ((m_c - g) ** 2).sum() / (k - 1),
        "msTR": k * ((m_tr - m_t[:, None] - m_r[None, :] + g) ** 2).sum() / ((t - 1) * (r - 1)),
        "msTC": r * ((m_tc - m_t[:, None] - m_c[None, :] + g) ** 2).sum() / ((t - 1) * (k - 1)),
        "msRC": t * ((m_rc - m_r[:, None] - m_c[None, :] + g) ** 2).sum() / ((r - 1) * (k - 1)),
        "msTRC": (residual**2).sum() / ((t - 1) * (r - 1) * (k - 1)),
    }


@pytest.mark.parametrize("name", FROC_FOMS)
def test_jackknife_values_give_rjafrocs_stored_mean_squares(
    thompson: FrocData, reference: dict, name: str
) -> None:
    """RJafroc's own stored OR and DBM mean squares (the DBM ones are of the pseudovalues, so
    they check every jackknife value)."""
    figure = froc_fom(thompson, name)
    stored = reference["rjafroc_stored"]
    for key, value in dbm_mean_squares(figure.values, figure.left_out).items():
        assert value == pytest.approx(stored["dbm_mean_squares"][name][key], rel=1e-10)
    anova = froc_analysis(thompson, name).mrmc.anova
    ms = {"msT": anova.ms_t, "msR": anova.ms_r, "msTR": anova.ms_tr}
    for key, value in ms.items():
        assert value == pytest.approx(stored["or_mean_squares"][name][key], rel=1e-12)


def check_or_block(result: FrocResult, expected: dict) -> None:
    """Every number of a reference OR block: R's printed digits, and 1e-10 relative."""
    got = froc_json(result)["or"]
    shown = expected["printed"]
    assert agrees(got["F"], shown["F"])
    assert agrees(got["ddf"], shown["ddf"])
    assert agrees(got["p"], shown["p"])
    assert all(agrees(v, s) for v, s in zip(got["diff_ci"], shown["diff_ci"], strict=True))
    assert got["diff_treatments"] == expected["diff_treatments"]
    assert got["ndf"] == expected["ndf"]
    for key in ("F", "ddf", "p", "diff", "diff_stderr", "diff_t"):
        assert got[key] == pytest.approx(expected[key], rel=1e-10), key
    assert got["diff_ci"] == pytest.approx(expected["diff_ci"], rel=1e-10)
    assert got["treatment_means"] == pytest.approx(expected["treatment_means"], rel=1e-12)
    assert got["ms"] == pytest.approx(expected["ms"], rel=1e-10)
    assert got["var_comp"] == pytest.approx(expected["var_comp"], rel=1e-10)
    for mine, theirs in zip(got["trt_ci"], expected["trt_ci"], strict=True):
        assert mine["treatment"] == theirs["treatment"]
        for key in ("estimate", "stderr", "df"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-10), key
        assert mine["ci"] == pytest.approx(theirs["ci"], rel=1e-10)
        assert mine["reason"] is None


def test_wafroc_or_analysis_matches_rjafroc(thompson: FrocData, reference: dict) -> None:
    assert reference["fom"] == "wAFROC"
    result = froc_analysis(thompson)
    check_or_block(result, reference["or"])
    as_json = froc_json(result)
    assert as_json["fom"] == "wAFROC"
    assert as_json["per_reader"] == [
        {"treatment": row["treatment"], "reader": row["reader"], "fom": pytest.approx(row["fom"])}
        for row in reference["per_reader"]
    ]
    assert as_json["fom_value"] == pytest.approx(
        np.mean([r["fom"] for r in reference["per_reader"]])
    )


@pytest.mark.parametrize("name", FROC_FOMS)
def test_or_analysis_of_every_fom_matches_rjafroc(
    thompson: FrocData, reference: dict, name: str
) -> None:
    result = froc_analysis(thompson, name)
    check_or_block(result, reference["or_by_fom"][name])
    as_json = froc_json(result)
    names = {"all": "all_cases", "positive": "abnormal_cases", "negative": "normal_cases"}
    assert as_json["jackknife"] == names[DROPPED[name]]
    bounded = name not in ("MaxNLF", "MaxNLFAllCases")
    assert result.mrmc.bounds == ((0.0, 1.0) if bounded else None)


def test_aliases_are_the_old_jafroc_names(reference: dict) -> None:
    assert reference["aliases"] == ALIASES
    assert fom_name("wjafroc") == "wAFROC" and fom_name("HRAUC") == "HrAuc"
    with pytest.raises(StatsError, match="one of wAFROC, AFROC"):
        fom_name("ROC")


# ---- a study small enough to compute by hand ------------------------------------------------

HAND_TRUTH = """case,truth,lesions,weights
N1,0,0,
N2,0,0,
A1,1,1,
A2,1,2,0.25;0.75
"""
HAND_MARKS = """treatment,reader,case,kind,lesion,rating
T,R1,N1,NL,,2
T,R1,A1,LL,1,3
T,R1,A2,LL,1,2
T,R1,A2,NL,,1
T,R2,N1,NL,,1
T,R2,N1,NL,,4
T,R2,N2,NL,,2
T,R2,A1,NL,,5
T,R2,A2,LL,2,4
T,R2,A2,LL,1,1
"""
# R1: highest NL N1 2, N2 -inf, A1 -inf, A2 1; lesions A1:1 = 3 (w 1), A2:1 = 2 (w 1/4),
# A2:2 unmarked (w 3/4). wAFROC = [N1: 1 + 1/2 * 1/4 + 0; N2: 1 + 1/4 + 1/2 * 3/4] / (2 * 2).
# R2: highest NL N1 4, N2 2, A1 5, A2 -inf; lesions A1:1 unmarked, A2:1 = 1, A2:2 = 4.
HAND_FOMS = {
    "wAFROC": (2.75 / 4, 1.125 / 4),
    "AFROC": (4 / 6, 1.5 / 6),
    "wAFROC1": (5.625 / 8, 2.625 / 8),
    "AFROC1": (8.5 / 12, 4 / 12),
    "HrAuc": (3.5 / 4, 3.5 / 4),
    "MaxLLF": (2 / 3, 2 / 3),
    "MaxNLF": (1 / 2, 3 / 2),
    "MaxNLFAllCases": (2 / 4, 4 / 4),
    "HrSe": (1.0, 1.0),
    "HrSp": (1 / 2, 0.0),
}


@pytest.fixture
def hand(tmp_path: Path) -> FrocData:
    (tmp_path / "truth.csv").write_text(HAND_TRUTH)
    (tmp_path / "marks.csv").write_text(HAND_MARKS)
    return read_froc(tmp_path / "marks.csv", tmp_path / "truth.csv")


@pytest.mark.parametrize("name", FROC_FOMS)
def test_hand_computed_foms(hand: FrocData, name: str) -> None:
    assert froc_fom(hand, name).values[0] == pytest.approx(HAND_FOMS[name], abs=1e-15)


def test_hand_computed_leave_one_out_values(hand: FrocData) -> None:
    # Reader R1, cases N1, N2, A1, A2 left out in turn.
    wafroc = froc_fom(hand, "wAFROC").left_out[0, 0]
    assert wafroc == pytest.approx([1.625 / 2, 1.125 / 2, 0.75 / 2, 2 / 2], abs=1e-15)
    # wAFROC1 without A1: N1, N2, A2 against A2's lesions; without A2: N1, N2, A1 against A1:1.
    wafroc1 = froc_fom(hand, "wAFROC1").left_out[0, 0]
    assert wafroc1[2:] == pytest.approx([(0.125 + 0.625 + 0.25) / 3, 3 / 3], abs=1e-15)
    # HrSp leaves out normal cases only: R2 marked both normal cases.
    assert froc_fom(hand, "HrSp").left_out[0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    # MaxLLF leaves out abnormal cases only: R1 without A1 marked 1 of A2's 2 lesions.
    assert froc_fom(hand, "MaxLLF").left_out[0, 0].tolist() == [0.5, 1.0]


def test_empty_weights_mean_equal_weights(tmp_path: Path) -> None:
    (tmp_path / "truth.csv").write_text(HAND_TRUTH.replace("0.25;0.75", ""))
    (tmp_path / "marks.csv").write_text(HAND_MARKS)
    data = read_froc(tmp_path / "marks.csv", tmp_path / "truth.csv")
    assert data.truth.lesion_weight.tolist() == [1.0, 0.5, 0.5]


# ---- every leave-one-out value against the definitions, by brute force -----------------------


def random_froc(tmp_path: Path, seed: int) -> tuple[Path, Path]:
    """Two treatments, three readers, 6 normal and 7 abnormal cases (1-3 lesions, unequal
    weights), integer ratings 1-4 so that ties are common, 0-3 NL marks a case."""
    rng = np.random.default_rng(seed)
    truth = ["case,truth,lesions,weights"]
    lesions = {}
    for c in range(13):
        if c < 6:
            truth.append(f"c{c},0,0,")
            continue
        n = int(rng.integers(1, 4))
        raw = rng.integers(1, 5, size=n)
        weights = ";".join(repr(float(w)) for w in raw / raw.sum())
        truth.append(f"c{c},1,{n},{weights}")
        lesions[c] = n
    marks = ["treatment,reader,case,kind,lesion,rating"]
    for t, r, c in itertools.product(("A", "B"), ("1", "2", "3"), range(13)):
        for _ in range(int(rng.integers(0, 4)) * int(rng.random() < 0.6)):
            marks.append(f"{t},{r},c{c},NL,,{int(rng.integers(1, 5))}")
        for lesion in range(1, lesions.get(c, 0) + 1):
            if rng.random() < 0.6:
                marks.append(f"{t},{r},c{c},LL,{lesion},{int(rng.integers(1, 5))}")
    (tmp_path / "truth.csv").write_text("\n".join(truth) + "\n")
    (tmp_path / "marks.csv").write_text("\n".join(marks) + "\n")
    return tmp_path / "marks.csv", tmp_path / "truth.csv"


def brute_force(data: FrocData, name: str, t: int, r: int, kept: list[int]) -> float:
    """The figure of merit of treatment t, reader r on the cases `kept`, from its definition."""
    truth = data.truth

    def psi(x: float, y: float) -> float:
        return 1.0 if x < y else 0.5 if x == y else 0.0

    normal = [c for c in kept if not truth.abnormal[c]]
    abnormal = [c for c in kept if truth.abnormal[c]]
    lesions = [les for les in range(len(truth.lesion_case)) if truth.lesion_case[les] in abnormal]
    z = data.nl_max[t, r]
    y = data.ll[t, r]
    highest = {
        c: max([z[c]] + [y[les] for les in lesions if truth.lesion_case[les] == c]) for c in kept
    }
    w = truth.lesion_weight
    if name in ("wAFROC", "AFROC", "wAFROC1", "AFROC1"):
        against = normal if name in ("wAFROC", "AFROC") else kept
        weight = w if name.startswith("w") else np.ones_like(w)
        total = sum(weight[les] * psi(z[n], y[les]) for n in against for les in lesions)
        return total / (len(against) * sum(weight[les] for les in lesions))
    if name == "HrAuc":
        total = sum(psi(highest[n], highest[a]) for n in normal for a in abnormal)
        return total / (len(normal) * len(abnormal))
    if name == "MaxLLF":
        return sum(math.isfinite(y[les]) for les in lesions) / len(lesions)
    if name == "MaxNLF":
        return sum(data.nl_count[t, r, n] for n in normal) / len(normal)
    if name == "MaxNLFAllCases":
        return sum(data.nl_count[t, r, c] for c in kept) / len(kept)
    if name == "HrSe":
        return sum(math.isfinite(highest[a]) for a in abnormal) / len(abnormal)
    return sum(data.nl_count[t, r, n] == 0 for n in normal) / len(normal)


@pytest.mark.parametrize("name", FROC_FOMS)
def test_leave_one_out_values_match_brute_force(tmp_path: Path, name: str) -> None:
    data = read_froc(*random_froc(tmp_path, seed=11))
    figure = froc_fom(data, name)
    cases = list(range(13))
    dropped = {
        "all": cases,
        "positive": [c for c in cases if data.abnormal[c]],
        "negative": [c for c in cases if not data.abnormal[c]],
    }[figure.dropped]
    for t, r in itertools.product(range(2), range(3)):
        assert figure.values[t, r] == pytest.approx(brute_force(data, name, t, r, cases), abs=1e-14)
        for i, c in enumerate(dropped):
            kept = [k for k in cases if k != c]
            assert figure.left_out[t, r, i] == pytest.approx(
                brute_force(data, name, t, r, kept), abs=1e-14
            ), (t, r, c)


def test_too_few_cases_for_the_jackknife(tmp_path: Path) -> None:
    (tmp_path / "truth.csv").write_text("case,truth,lesions,weights\n1,0,0,\n2,1,1,\n3,1,1,\n")
    (tmp_path / "marks.csv").write_text(
        "treatment,reader,case,kind,lesion,rating\nA,1,2,LL,1,3\nA,2,3,LL,1,4\n"
    )
    data = read_froc(tmp_path / "marks.csv", tmp_path / "truth.csv")
    with pytest.raises(StatsError, match="needs at least 2 normal and 2 abnormal cases"):
        froc_fom(data, "wAFROC")
    # wAFROC1 compares lesions with every case: one normal case is enough.
    assert froc_fom(data, "wAFROC1").values.shape == (1, 2)


# ---- bad input ------------------------------------------------------------------------------

GOOD_TRUTH = "case,truth,lesions,weights\n1,0,0,\n2,0,0,\n3,1,2,0.5;0.5\n4,1,1,1\n"
GOOD_MARKS = "treatment,reader,case,kind,lesion,rating\nA,1,1,NL,,2\nA,1,3,LL,1,4\n"


@pytest.mark.parametrize(
    ("truth", "message"),
    [
        ("", "empty; expected the header case,truth,lesions,weights"),
        ("case,truth,lesions,weights\n", "no rows below the header"),
        ("case,truth,lesions,weights,case\n1,0,0,,1\n", "column(s) case appear more than once"),
        ("case,truth,lesions,weights\n1,0,0\n", "line 2 has 3 fields, the header 4"),
        ("case,truth,weights\n1,0,\n", "missing column(s) lesions"),
        ("case,truth,lesions,weights\n,0,0,\n", "line 2 has no case"),
        ("case,truth,lesions,weights\n1,0,0,\n1,0,0,\n", "line 3 repeats case 1 (first on line 2)"),
        ("case,truth,lesions,weights\n1,2,0,\n", "line 2 has truth '2'"),
        ("case,truth,lesions,weights\n1,1,x,\n", "line 2 has lesions 'x'"),
        ("case,truth,lesions,weights\n1,1,1.5,\n", "line 2 has lesions '1.5'"),
        ("case,truth,lesions,weights\n1,1,0,\n", "line 2: an abnormal case (truth 1) needs"),
        ("case,truth,lesions,weights\n1,0,1,\n", "line 2: a normal case (truth 0) has no lesions"),
        (
            "case,truth,lesions,weights\n1,0,0,1\n",
            "line 2: a normal case (truth 0) has no lesion w",
        ),
        ("case,truth,lesions,weights\n1,1,2,0.5;0.4\n", "line 2 has weights summing to 0.9"),
        ("case,truth,lesions,weights\n1,1,2,1\n", "line 2 has 1 weight(s) for 2 lesion(s)"),
        ("case,truth,lesions,weights\n1,1,2,0.5;x\n", "line 2 has weights '0.5;x'"),
        ("case,truth,lesions,weights\n1,1,2,1.5;-0.5\n", "every weight must be positive"),
        (
            "case,truth,lesions,weights\n\n1,0,0,\n1,0,0,\n",
            "line 4 repeats case 1 (first on line 3)",
        ),
    ],
)
def test_bad_truth_files_are_refused(tmp_path: Path, truth: str, message: str) -> None:
    (tmp_path / "truth.csv").write_text(truth)
    (tmp_path / "marks.csv").write_text(GOOD_MARKS)
    with pytest.raises(StatsError) as error:
        read_froc(tmp_path / "marks.csv", tmp_path / "truth.csv")
    assert str(error.value).startswith(f"{tmp_path / 'truth.csv'}: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("A,1,9,NL,,2", "line 4 names case 9, which is not in the truth file"),
        ("A,1,3,LL,3,2", "line 4 marks lesion '3' of case 3, which has 2 lesion(s)"),
        ("A,1,3,LL,0,2", "line 4 marks lesion '0' of case 3"),
        ("A,1,3,LL,x,2", "line 4 marks lesion 'x' of case 3"),
        ("A,1,2,LL,1,2", "line 4 is an LL mark on case 2, a normal case (no lesions)"),
        ("A,1,3,LL,,2", "line 4 is an LL mark without a lesion number"),
        ("A,1,3,LL,1,5", "line 4 is a second LL mark on lesion 1 of case 3 for treatment A"),
        ("A,1,3,NL,1,5", "line 4 is an NL mark with lesion 1; leave it empty"),
        ("A,1,3,XL,,5", "line 4 has kind 'XL'; kind is LL (on a lesion) or NL (not)"),
        ("A,1,3,NL,,high", "line 4 has rating 'high'; ratings are finite numbers"),
        ("A,1,3,NL,,inf", "line 4 has rating 'inf'"),
        ("A,1,3,NL,,", "line 4 has rating ''"),
        (",1,3,NL,,2", "line 4 has no treatment"),
        ("A,,3,NL,,2", "line 4 has no reader"),
        ("A,1,,NL,,2", "line 4 has no case"),
        ("\nA,1,9,NL,,2", "line 5 names case 9"),
    ],
)
def test_bad_marks_are_refused_with_file_and_line(tmp_path: Path, rows: str, message: str) -> None:
    (tmp_path / "truth.csv").write_text(GOOD_TRUTH)
    (tmp_path / "marks.csv").write_text(GOOD_MARKS + rows + "\n")
    with pytest.raises(StatsError) as error:
        read_froc(tmp_path / "marks.csv", tmp_path / "truth.csv")
    assert str(error.value).startswith(f"{tmp_path / 'marks.csv'}: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ("", "empty; expected the header treatment,reader,case,kind,lesion,rating"),
        ("\n\n", "empty; expected the header"),
        ("treatment,reader,case,kind,lesion,rating\n", "no rows below the header"),
        ("treatment,reader,case,kind,lesion,rating\nA,1,3,NL,,1,5\n", "line 2 has 7 fields"),
        ("treatment,reader,case,kind,lesion,rating\nA,1,3,NL\n", "line 2 has 4 fields"),
        ('treatment,reader,case,kind,lesion,rating\nA,1,3,NL,,"5\n', "cannot be read as CSV"),
        ("treatment,reader,case,kind,rating\nA,1,1,NL,2\n", "missing column(s) lesion"),
        ("reader,case\n1,1\n", "missing column(s) treatment, kind, lesion, rating"),
    ],
)
def test_empty_and_incomplete_marks_files(tmp_path: Path, marks: str, message: str) -> None:
    (tmp_path / "truth.csv").write_text(GOOD_TRUTH)
    (tmp_path / "marks.csv").write_text(marks)
    with pytest.raises(StatsError, match=r"marks\.csv: ") as error:
        read_froc(tmp_path / "marks.csv", tmp_path / "truth.csv")
    assert message in str(error.value)


def test_absent_files(tmp_path: Path) -> None:
    (tmp_path / "truth.csv").write_text(GOOD_TRUTH)
    with pytest.raises(StatsError, match=r"marks\.csv: no such file"):
        read_froc(tmp_path / "marks.csv", tmp_path / "truth.csv")
    with pytest.raises(StatsError, match=r"nope\.csv: no such file"):
        read_froc(tmp_path / "marks.csv", tmp_path / "nope.csv")


def test_extra_columns_letter_case_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "truth.csv").write_text(HAND_TRUTH.replace("case,truth", "Case , Truth") + "\n\n")
    marks = HAND_MARKS.replace(",NL,", ",nl,").replace("\n", ",note\n")
    (tmp_path / "marks.csv").write_text("\n" + marks + "\n")
    data = read_froc(tmp_path / "marks.csv", tmp_path / "truth.csv")
    assert froc_fom(data, "wAFROC").values[0] == pytest.approx(HAND_FOMS["wAFROC"], abs=1e-15)
