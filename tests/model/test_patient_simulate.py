"""`simulate_events` draws one patient's events per record: merged data are refused."""

import numpy as np
import pytest

from lenasim.model.patient_data import read_patient_cycles, simulate_events

HEADER = "trial,patient,cycle,dose_mg,days_on,cycle_days,flare,tls,neutropenia,flare_grade3plus"


def _data(tmp_path):
    lines = [HEADER] + [f"T,{p},{c},5.0,21,28,0,0,0,0" for p in range(4) for c in (1, 2)]
    path = tmp_path / "cycles.csv"
    path.write_text("\n".join(lines) + "\n")
    return read_patient_cycles(path)


def test_merged_patient_data_are_refused_with_the_fix_named(tmp_path):
    merged = _data(tmp_path).merged()
    assert merged.n_patients == 1 and merged.weight.max() == 4  # four identical patients
    with pytest.raises(ValueError, match="unmerged patient data.*4 patients.*before PatientData"):
        simulate_events({}, merged, {}, [0], np.random.default_rng(0))
