"""The shipped evidence table and its loader: content, consistency, validation, CLI."""

from __future__ import annotations

import copy
import csv
import functools
import io
import re
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lenasim import cli
from lenasim.core.errors import EvidenceError
from lenasim.core.regimen import nominal_features
from lenasim.evidence.table import (
    COLUMNS,
    evidence_hash,
    fitted_rows,
    load_arms,
    load_evidence,
)

DATA = resources.files("lenasim.evidence") / "data"
CSV_TEXT = (DATA / "evidence.csv").read_text()
YAML_TEXT = (DATA / "arms.yaml").read_text()

SEED_TRIALS = {
    "chanan_khan_2006", "ferrajoli_2008", "chen_2011", "aue_2010", "andritsos_2008",
    "badoux_2011", "ferrajoli_2011", "badoux_ofatumumab", "blum_flavopiridol",
    "gimema_llc606", "egle_fr", "james_lr", "brown_fr", "shanafelt_pcr",
}  # fmt: skip


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return load_evidence()


@pytest.fixture(scope="module")
def arms():
    return load_arms()


def row(df: pd.DataFrame, row_id: str) -> pd.Series:
    sel = df[df["row_id"] == row_id]
    assert len(sel) == 1, row_id
    return sel.iloc[0]


# ------------------------------------------------------------------ content


def test_every_seed_trial_and_arm_present(df, arms):
    assert {a.trial for a in arms.values()} == SEED_TRIALS
    assert set(df["trial"]) == SEED_TRIALS
    used = {a for ids in df["arm_ids"] for a in ids}
    assert used == set(arms), "every arm has at least one figure"
    assert arms["chanan_khan_2006_a"].n + arms["chanan_khan_2006_b"].n == 45
    assert arms["aue_20mg"].n + arms["aue_10mg"].n == 33
    assert arms["chen_2011_amended"].n == 25 and arms["chen_2011_original"].n == 2


def test_counts_and_percents_agree(df):
    """Independent re-check: each printed percent is 100*events/n at its precision."""
    checked = 0
    for _, r in df[df["percent_reported"].notna()].iterrows():
        raw = next(x for x in csv.DictReader(io.StringIO(CSV_TEXT)) if x["row_id"] == r["row_id"])
        half = 0.5 * 10.0 ** Decimal(raw["percent_reported"]).as_tuple().exponent
        gap = abs(100 * r["events"] / r["n"] - r["percent_reported"])
        assert gap <= half + r["percent_tolerance"] + 1e-9, r["row_id"]
        if r["percent_tolerance"] > 0:
            assert gap > half, f"{r['row_id']}: tolerance set but not needed"
            assert len(r["note"]) > 20
        checked += 1
    assert checked >= 30


def test_no_fitted_double_counting(df):
    """Two fitted rows must not count the same patients (any shared arm, pooled rows
    included) for the same outcome; only cycle_k rows of different cycles may coexist."""
    fit = fitted_rows(df)
    seen: dict[tuple[str, str], list[tuple[str, object]]] = {}
    for _, r in fit.iterrows():
        for arm in r["arm_ids"]:
            seen.setdefault((arm, r["outcome"]), []).append((r["unit"], r["cycle_k"]))
    for key, entries in seen.items():
        if len(entries) > 1:
            assert all(u == "cycle_k" for u, _ in entries), key
            ks = [k for _, k in entries]
            assert len(set(ks)) == len(ks), key


def test_fitted_rows_are_quantitative_and_not_grade2(df):
    fit = fitted_rows(df)
    assert fit["in_fit"].all() and len(fit) == int(df["in_fit"].sum())
    assert not (fit["unit"] == "qualitative").any()
    assert not (fit["outcome"] == "flare_grade2plus").any()
    assert fit["events"].notna().all() and fit["n"].notna().all()
    assert (fit["events"] <= fit["n"]).all()


@pytest.mark.parametrize(
    ("fitted", "not_fitted"),
    [
        (
            ["ck06_a_flare", "ck06_b_flare"],
            ["ck06_pooled_flare_cancer2011", "ck06_pooled_flare_review"],
        ),
        (["ck06_a_tls", "ck06_b_tls"], ["ck06_pooled_tls_review"]),
        (["chen11_neutropenia_patients"], ["chen11_neutropenia_cycles"]),
        (["lr_neutropenia_review"], ["lr_neutropenia_full"]),
        (["lr_tls_review"], ["lr_tls_notes"]),
        (["ck06_pooled_flare_grade3plus"], ["ck06_a_flare_grade2plus", "ck06_b_flare_grade2plus"]),
        (["andritsos08_tls"], ["andritsos08_tls_qualitative"]),
        (["ofa_neutropenia"], ["ofa_full_neutropenia_cycles"]),
        (["egle_neutropenia", "egle_tls"], ["egle_full_neutropenia", "egle_full_tls"]),
        (["egle_flare"], ["egle_full_flare_grade3plus"]),
        ([], ["gimema_full_neutropenia"]),
        (["aue_flare_c1", "aue_flare_c4"], ["aue_flare_patients_table1"]),
        (["blum_flare"], ["blum_flare_table2"]),
        (
            [],
            ["badoux11_neutropenia_cycles", "ck06_a_flare_grade2plus", "ck06_ash2005_flare_subset"],
        ),
    ],
)
def test_duplicate_figures_fit_exactly_one(df, fitted, not_fitted):
    for rid in fitted:
        assert row(df, rid)["in_fit"], rid
    for rid in not_fitted:
        r = row(df, rid)
        assert not r["in_fit"], rid
        assert r["note"], rid


def test_key_figures(df):
    """Spot checks against the sources (seed 001 s3.1/3.2, 002, 003, evidence notes)."""
    expect = {
        "ck06_a_flare": (19, 29), "ck06_b_flare": (11, 16), "ck06_a_tls": (2, 29),
        "ck06_pooled_neutropenia": (31, 45), "ferrajoli08_flare": (13, 44),
        "chen11_flare": (22, 25), "chen11_neutropenia_patients": (18, 25),
        "chen11_neutropenia_cycles": (69, 470), "aue_neutropenia_cycles": (73, 131),
        "badoux11_flare": (31, 60), "lr_tls_review": (1, 59), "lr_flare": (22, 59),
        "blum_tls": (3, 21), "blum_neutropenia": (18, 21), "james_neutropenia": (18, 37),
        "james_flare": (21, 37), "shanafelt_neutropenia": (21, 34), "egle_neutropenia": (7, 10),
        "andritsos08_flare_grade3plus": (2, 4), "ofa_neutropenia": (8, 16),
        "andritsos08_tls": (1, 4), "ck06_pooled_flare_grade3plus": (3, 45),
        "lr_neutropenia_review": (40, 59), "lr_neutropenia_full": (43, 59),
        "gimema_full_neutropenia": (26, 40), "egle_full_neutropenia": (32, 45),
        "ofa_full_neutropenia_cycles": (103, 574),
    }  # fmt: skip
    for rid, (e, n) in expect.items():
        r = row(df, rid)
        assert (r["events"], r["n"]) == (e, n), rid
    aue = df[(df["unit"] == "cycle_k") & (df["trial"] == "aue_2010")].sort_values("cycle_k")
    assert aue["percent_reported"].tolist() == [78, 48, 38, 30]
    assert (aue["cycles_at_risk"] == aue["cycle_k"]).all()


def test_table_size(df, arms):
    """Change detector: rows, arms and fitted rows (issue 14 added 7 rows, 3 arms and 2 fitted
    rows, swapped which Ferrajoli 2011 neutropenia row is fitted, and took Andritsos's grade >= 3
    flare row out of the fit: selected on the outcome)."""
    assert (len(df), len(arms), int(df["in_fit"].sum())) == (69, 20, 43)
    assert not df.set_index("row_id").loc["andritsos08_flare_grade3plus", "in_fit"]
    assert df["trial"].nunique() == 14


# ------------------------------------------- corrections of issue 14, item 1


def test_sources_cite_authors_journal_year(df):
    """Every source is a citation (authors, journal, year), not a bare file name; the seed
    texts are named after their citation, and the aggregator address is gone."""
    seed_cite = {
        "(seed 001)": "Cortelezzi A et al., Adv Hematol 2012",
        "(seed 002)": "Blood 2008 commentary on Ferrajoli et al.",
        "(seed 003)": "Chen CI et al., J Clin Oncol 2011;29:1175",
    }
    for _, r in df.iterrows():
        src = r["source"]
        assert re.search(r"\b(19|20)\d\d\b", src), r["row_id"]
        assert "evidence-notes.md" not in src and "paperexplained" not in src, r["row_id"]
        for part in src.split("; "):
            assert not re.match(r"\d{3}_[0-9a-f]+\.txt", part), (r["row_id"], part)
            for tag, cite in seed_cite.items():
                if part.endswith(tag):
                    assert part.startswith(cite), (r["row_id"], part)


def test_andritsos_steroid_prophylaxis_and_tls(df, arms):
    """Andritsos (ASH 2007 abstract 4727): all four had corticosteroid prophylaxis, patient 1
    had TLS in course 1; a report of four patients selected for serious toxicity."""
    arm = arms["andritsos_2008"]
    assert arm.steroid_prophylaxis
    assert "prednisone" in arm.note and "day 3" in arm.note and "selected" in arm.note
    tls = row(df, "andritsos08_tls")
    assert tls["in_fit"] and (tls["events"], tls["n"]) == (1, 4)
    assert tls["outcome"] == "tls" and tls["unit"] == "patients" and tls["cycles_at_risk"] == 1
    assert "4727" in tls["source"]
    sub = df[df["trial"] == "andritsos_2008"]
    assert (sub["steroid_prophylaxis"] == 1.0).all()
    kept = {"andritsos08_flare", "andritsos08_flare_grade3plus", "andritsos08_tls_qualitative"}
    assert kept <= set(sub["row_id"])
    for _, r in sub[sub["in_fit"]].iterrows():
        assert "Selection" in r["note"], r["row_id"]


def test_chanan_khan_grade3_flare_pooled_and_fitted_once(df):
    """ASH 2008 abstract: grade III flare in 3 of the 45 (groups pooled); the group flare
    rows cite that abstract; the grade II/III figures are grade >= 2, never fitted."""
    g3 = fitted_rows(df)
    g3 = g3[(g3["trial"] == "chanan_khan_2006") & (g3["outcome"] == "flare_grade3plus")]
    assert g3["row_id"].tolist() == ["ck06_pooled_flare_grade3plus"]
    r = g3.iloc[0]
    assert (r["events"], r["n"]) == (3, 45) and r["unit"] == "patients"
    assert r["arm_ids"] == ("chanan_khan_2006_a", "chanan_khan_2006_b")
    assert r["arm_weights"] == pytest.approx((29 / 45, 16 / 45))
    assert "acemap.info/paper/55524609" in r["source"]
    for rid in (
        "ck06_a_flare",
        "ck06_b_flare",
        "ck06_a_flare_grade2plus",
        "ck06_b_flare_grade2plus",
    ):
        assert "acemap.info/paper/55524609" in row(df, rid)["source"], rid
    for rid in ("ck06_a_flare_grade2plus", "ck06_b_flare_grade2plus"):
        assert row(df, rid)["outcome"] == "flare_grade2plus" and not row(df, rid)["in_fit"]


def test_aue_per_cycle_denominators(df, arms):
    """ASH 2010: 31 patients received at least 2 cycles, so n = 31 from cycle 2 (cycles 3-4:
    31 assumed, an upper bound); counts re-derived from the printed percents."""
    aue = df[(df["unit"] == "cycle_k") & (df["trial"] == "aue_2010")].sort_values("cycle_k")
    assert aue["n"].tolist() == [33, 31, 31, 31]
    assert aue["events"].tolist() == [26, 15, 12, 9]
    for _, r in aue[aue["cycle_k"] >= 3].iterrows():
        assert "upper bound" in r["note"] and "31 assumed" in r["note"], r["row_id"]
    assert all("allopurinol" in arms[a].note.lower() for a in ("aue_20mg", "aue_10mg"))


def test_badoux_2011_lead_in_two_cycles_at_5mg(arms):
    """Badoux 2011 (Blood 2011; ASH 2008 abstract 45): 5 mg for 56 days, then +5 mg every 28
    days: 5 mg in cycles 1-2, 10 mg in cycle 3."""
    reg = arms["badoux_2011_elderly"].regimen
    f = nominal_features(reg.expand(4))
    assert f["dose_max"].tolist() == [5, 5, 10, 15]
    assert reg.expand(4).cycle_days.tolist() == [28, 28, 28, 28]


def test_badoux_2011_schedule_correction_is_stated(arms):
    note = arms["badoux_2011_elderly"].note
    assert "Corrected" in note and "56" in note and "cycle 3" in note


def test_gimema_days_1_14_and_2_5mg_in_course_1(arms):
    """GIMEMA LLC0606 (ASH 2010 abstract 1377): lenalidomide days 1-14 of each course, 2.5 mg
    in course 1, then the cohort dose (5 mg, the MTD, assumed)."""
    reg = arms["gimema_llc606"].regimen
    sch = reg.expand()
    assert reg.days_on == (1, 14)
    assert sch.on[:, :14].all() and not sch.on[:, 14:].any()
    f = nominal_features(sch)
    assert f["dose_max"].tolist() == [2.5, 5, 5, 5, 5, 5]
    assert f["dose_mean"][0] == 2.5
    assert "cohort" in arms["gimema_llc606"].note and "3+3" in arms["gimema_llc606"].note


def test_lenalidomide_rituximab_full_citation(df, arms):
    cit = arms["ferrajoli_2011_lr"].citation
    for bit in (
        "Badoux XC et al., J Clin Oncol 2013;31(5):584-591",
        "10.1200/JCO.2012.42.8623",
        "23270003",
    ):
        assert bit in cit
    for rid in ("lr_neutropenia_full", "lr_tls_notes"):
        assert "J Clin Oncol 2013;31(5):584-591" in row(df, rid)["source"], rid


@pytest.mark.parametrize(
    ("row_id", "arm_id", "pct"),
    [
        ("lr_neutropenia_full", "ferrajoli_2011_lr", 73),
        ("lr_tls_notes", "ferrajoli_2011_lr", None),
        ("ofa_full_neutropenia_cycles", "badoux_ofatumumab_full", 18),
        ("gimema_full_neutropenia", "gimema_llc606_full", 65),
        ("egle_full_neutropenia", "egle_fr_full", 71),
        ("egle_full_tls", "egle_fr_full", None),
        ("egle_full_flare_grade3plus", "egle_fr_full", None),
    ],
)
def test_full_reports_are_sensitivity_rows(df, row_id, arm_id, pct):
    """The later full reports count the same patients as the fitted rows: recorded, not fitted."""
    r = row(df, row_id)
    assert not r["in_fit"]
    assert r["arm_ids"] == (arm_id,)
    assert "same" in r["note"] and "patients" in r["note"]
    if pct is not None:
        assert r["percent_reported"] == pct


def test_full_report_arms_never_fitted(df, arms):
    """The *_full arms hold patients of other arms: the per-arm double-counting check cannot see
    that, so none of their rows may be fitted."""
    full = {a for a in arms if a.endswith("_full")}
    assert full == {"badoux_ofatumumab_full", "gimema_llc606_full", "egle_fr_full"}
    assert arms["badoux_ofatumumab_full"].n == 34 and arms["gimema_llc606_full"].n == 40
    assert arms["egle_fr_full"].n == 45
    used = df[df["arm_ids"].map(lambda ids: bool(set(ids) & full))]
    assert len(used) == 5 and not used["in_fit"].any()
    for a in full:
        assert "Sensitivity only" in arms[a].note, a


def test_blum_flavopiridol_tls_goes_to_the_cdk_class(df, arms):
    arm = arms["blum_flavopiridol"]
    assert arm.partner_classes == ("cdk_inhibitor",)
    assert [a for a, x in arms.items() if "cdk_inhibitor" in x.partner_classes] == [
        "blum_flavopiridol"
    ]
    assert "NCT00735930" in arm.note and "flavopiridol itself causes TLS" in arm.note
    tls = row(df, "blum_tls")
    assert tls["partner_classes"] == ("cdk_inhibitor",) and "cdk_inhibitor" in tls["note"]


def test_james_rests_on_the_review_alone(df, arms):
    assert "seed 001 s3.2 alone" in arms["james_lr"].note
    for _, r in df[df["trial"] == "james_lr"].iterrows():
        assert "seed 001 s3.2 alone" in r["note"], r["row_id"]
        assert r["source"].startswith("Cortelezzi A et al., Adv Hematol 2012"), r["row_id"]


def test_pooled_rows_join_n_weighted(df, arms):
    r = row(df, "ck06_pooled_neutropenia")
    assert r["arm_ids"] == ("chanan_khan_2006_a", "chanan_khan_2006_b")
    assert r["arm_n"] == 45
    assert r["arm_weights"] == pytest.approx((29 / 45, 16 / 45))
    assert r["steroid_prophylaxis"] == pytest.approx(16 / 45)
    assert (
        "29/45 pts: 25 mg/day" in r["regimen_text"] and "16/45 pts: 10 mg/day" in r["regimen_text"]
    )
    single = row(df, "ck06_b_flare")
    assert single["regimen_text"] == arms["chanan_khan_2006_b"].regimen.describe()
    assert single["steroid_prophylaxis"] == 1.0 and single["arm_weights"] == (1.0,)
    assert single["setting"] == "relapsed"
    assert row(df, "badoux11_flare")["elderly"]
    assert row(df, "lr_flare")["partner_classes"] == ("anti_cd20",)


def test_columns_and_types(df):
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert str(df["events"].dtype) == "Int64" and str(df["n"].dtype) == "Int64"
    assert df["in_fit"].dtype == bool
    assert df["row_id"].is_unique
    assert df["source"].str.len().min() > 5 and df["cycles_source"].str.len().min() > 5


def test_evidence_hash(tmp_path):
    h = evidence_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    csv_copy, yaml_copy = tmp_path / "e.csv", tmp_path / "a.yaml"
    csv_copy.write_text(CSV_TEXT)
    yaml_copy.write_text(YAML_TEXT)
    assert evidence_hash(csv_copy, yaml_copy) == h
    yaml_copy.write_text(YAML_TEXT + "\n# edited\n")
    assert evidence_hash(csv_copy, yaml_copy) != h


# --------------------------------------------------------------- bad inputs


def write_csv(tmp_path: Path, edit) -> Path:
    """The shipped CSV with ``edit(rows)`` applied, written to tmp_path."""
    rows = list(csv.DictReader(io.StringIO(CSV_TEXT)))
    edit(rows)
    out = io.StringIO()
    w = csv.DictWriter(
        out, fieldnames=list(rows[0]) if rows else list(COLUMNS), lineterminator="\n"
    )
    w.writeheader()
    w.writerows(rows)
    p = tmp_path / "bad.csv"
    p.write_text(out.getvalue())
    return p


def set_field(target: str, /, **fields):
    def edit(rows):
        for r in rows:
            if r["row_id"] == target:
                r.update({k: str(v) for k, v in fields.items()})
                return
        raise KeyError(target)

    return edit


def line_of(row_id: str) -> int:
    ids = [r["row_id"] for r in csv.DictReader(io.StringIO(CSV_TEXT))]
    return ids.index(row_id) + 2


@pytest.mark.parametrize(
    ("row_id", "fields", "field", "words"),
    [
        ("ck06_a_flare", dict(events=30), "events", "events must be <= n"),
        ("ck06_a_flare", dict(events=-1), "events", "-1 is below 0"),
        ("ck06_a_flare", dict(n=-3), "n", "is below 1"),
        ("ck06_a_flare", dict(percent_reported=60), "percent_reported", "set percent_tolerance"),
        (
            "ck06_pooled_neutropenia",
            dict(percent_tolerance=""),
            "percent_reported",
            "no count out of 45 prints 70%",
        ),
        (
            "ck06_pooled_neutropenia",
            dict(note=""),
            "percent_tolerance",
            "explain the mismatch in the note",
        ),
        ("ck06_a_flare", dict(outcome="flare"), "outcome", "use one of flare_any"),
        ("ck06_a_flare", dict(unit="people"), "unit", "use one of patients"),
        ("ck06_a_flare", dict(source=""), "source", "give the seed file"),
        ("ck06_a_flare", dict(cycles_source=""), "cycles_source", "assumed: ..."),
        (
            "ck06_a_flare",
            dict(arms="chanan_khan_2006_c"),
            "arms",
            "unknown arm id 'chanan_khan_2006_c'",
        ),
        ("ck06_a_flare", dict(arms="ferrajoli_2008"), "trial", "belongs to trial 'ferrajoli_2008'"),
        ("aue_flare_c2", dict(cycle_k=""), "cycle_k", "give the cycle number k"),
        ("aue_flare_c2", dict(cycles_at_risk=4), "cycles_at_risk", "set it to 2"),
        ("ck06_a_flare", dict(cycle_k=1), "cycle_k", "leave cycle_k empty"),
        (
            "gimema_neutropenia_qualitative",
            dict(in_fit="true"),
            "in_fit",
            "qualitative row cannot enter",
        ),
        ("ck06_a_flare_grade2plus", dict(in_fit="true"), "in_fit", "never fitted"),
        ("ck06_a_flare", dict(in_fit="yes"), "in_fit", "write true or false"),
        ("ck06_a_flare", dict(events=""), "events", "give the count"),
        ("ck06_a_flare", dict(n=45, percent_reported=""), "n", "cannot exceed the arms' patients"),
        ("brown_flare_qualitative", dict(unit="patients", events=1, n=5), "arms", "have no n"),
        (
            "ck06_pooled_flare_review",
            dict(in_fit="true"),
            "in_fit",
            "counting the same patients twice",
        ),
        (
            "aue_flare_patients_table1",
            dict(in_fit="true"),
            "in_fit",
            "counting the same patients twice",
        ),
        ("lr_neutropenia_full", dict(in_fit="true"), "in_fit", "counting the same patients twice"),
        ("aue_flare_c3", dict(events=11), "percent_reported", "no count out of 31 prints 38%"),
    ],
)
def test_bad_rows(tmp_path, row_id, fields, field, words):
    p = write_csv(tmp_path, set_field(row_id, **fields))
    with pytest.raises(EvidenceError) as info:
        load_evidence(p)
    msg = str(info.value)
    assert str(p) in msg
    assert f"'{row_id}'" in msg and f"(line {line_of(row_id)})" in msg
    assert f"field '{field}'" in msg
    assert words in msg
    assert "fix:" in msg


def test_duplicate_row_id(tmp_path):
    p = write_csv(tmp_path, set_field("ck06_b_flare", row_id="ck06_a_flare"))
    with pytest.raises(
        EvidenceError, match=r"row 'ck06_a_flare' \(line \d+\), field 'row_id': duplicate of line 2"
    ):
        load_evidence(p)


def test_bad_header(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(CSV_TEXT.replace("percent_reported", "percent", 1))
    with pytest.raises(
        EvidenceError,
        match=r"missing columns \['percent_reported'\], unknown columns \['percent'\]",
    ):
        load_evidence(p)


def test_missing_file(tmp_path):
    with pytest.raises(EvidenceError, match="cannot read"):
        load_evidence(tmp_path / "nope.csv")


@functools.cache
def _arms_doc() -> dict:
    """The shipped arms document, parsed once (a copy is edited by each test)."""
    return yaml.safe_load(YAML_TEXT)


# libyaml's emitter where PyYAML has it: the same document (~9,000 nodes) written ~10x
# faster than by the pure-Python one (issue 22.12)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_yaml(tmp_path: Path, arm_id: str, **regimen_or_fields) -> Path:
    """bad.yaml: the shipped arms document with ``arm_id``'s fields (``regimen__KEY``:
    its regimen's) replaced."""
    doc = copy.deepcopy(_arms_doc())
    arm = doc["arms"][arm_id]
    for key, val in regimen_or_fields.items():
        if key.startswith("regimen__"):
            arm["regimen"][key.removeprefix("regimen__")] = val
        else:
            arm[key] = val
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.dump(doc, Dumper=_DUMPER, sort_keys=False))
    return p


@pytest.mark.parametrize(
    ("arm_id", "edit", "field", "words"),
    [
        ("aue_10mg", dict(regimen__days_on=[1, 50]), "regimen.days_on", "ends after the 42-day cycle"),
        ("andritsos_2008", dict(regimen__start_mg=0), "regimen.start_mg", "must be >= 0.5 (got 0)"),
        ("andritsos_2008", dict(regimen__start_mg=-25), "regimen.start_mg", "must be >= 0.5"),
        ("chen_2011_amended", dict(regimen__target_mg=2), "regimen.target_mg", "below start_mg"),
        ("chen_2011_amended", dict(regimen__step=5), "regimen.step", "unknown key"),
        (
            "ferrajoli_2008",
            dict(setting="refractory"),
            "setting",
            "must be one of relapsed, untreated, consolidation (got 'refractory')",
        ),
        ("ferrajoli_2011_lr", dict(partner_classes=["anti_cd2"]), "partner_classes[0]",
         "did you mean 'anti_cd20'?"),
        ("ferrajoli_2008", dict(n=0), "n", "must be >= 1"),
        ("ferrajoli_2008", dict(n=True), "n", "must be a whole number (got true)"),
        ("ferrajoli_2008", dict(elderly="yes"), "elderly", "must be true or false"),
    ],
)  # fmt: skip
def test_bad_arms(tmp_path, arm_id, edit, field, words):
    """Arms errors come from the one formatter (lenasim.core.schema), as configs' do."""
    p = write_yaml(tmp_path, arm_id, **edit)
    with pytest.raises(EvidenceError) as info:
        load_arms(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}: arms.{arm_id}.{field}: "), msg
    assert words in msg
    with pytest.raises(EvidenceError):  # and the evidence load fails the same way
        load_evidence(arms_path=p)


def test_pooled_arms_must_agree(tmp_path):
    p = write_yaml(tmp_path, "aue_20mg", elderly=True)
    with pytest.raises(
        EvidenceError, match=r"row 'aue_flare_c1' .*field 'arms': pooled arms disagree on elderly"
    ):
        load_evidence(arms_path=p)


def test_arms_yaml_shape(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("trials: {}\n")
    with pytest.raises(EvidenceError, match="top-level mapping `arms:`"):
        load_arms(p)


# ---------------------------------------------------------------------- CLI


def test_cli_prints_table(capsys, df):
    assert cli.main(["evidence"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    for trial in SEED_TRIALS:
        assert trial in out
    assert "19/29" in out and "FIT" in out and "cycle 3" in out
    assert "25 mg/day days 1-21 of 28-day cycles" in out
    assert "steroid flare prophylaxis in cycle 1" in out
    assert out.count(" FIT ") == int(df["in_fit"].sum())


def test_cli_one_trial_and_csv(capsys, tmp_path, df):
    dest = tmp_path / "sub" / "evidence_flat.csv"
    assert cli.main(["evidence", "--trial", "aue_2010", "--csv", str(dest)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("wrote ") and str(dest) in out
    assert len(out.splitlines()) == 1  # the file, not the table as well
    flat = pd.read_csv(dest)
    assert set(flat["trial"]) == {"aue_2010"}
    assert len(flat) == int((df["trial"] == "aue_2010").sum())
    assert set(COLUMNS) <= set(flat.columns) and "regimen_text" in flat.columns


def test_cli_unknown_trial(capsys):
    assert cli.main(["evidence", "--trial", "nobody_2099"]) == 2
    err = capsys.readouterr().err
    assert "unknown --trial 'nobody_2099'" in err and "chanan_khan_2006" in err


def test_cli_prints_plain_citations_not_curation_pointers(capsys):
    assert cli.main(["evidence"]) == 0
    out = capsys.readouterr().out
    assert "Chen CI et al., J Clin Oncol 2011" in out
    for internal in ("seed 00", "evidence notes", "evidence-notes.md", "http"):
        assert internal not in out, internal


def test_cli_piped_into_head_ends_quietly():
    """`lenasim evidence | head`: the reader goes away before the table is written; the
    command ends without a traceback, with SIGPIPE's status (141)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "lenasim", "evidence"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # before it prints: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""
