"""What the posterior learns from the synthetic patients: the dose slopes' posterior median
and 90% interval width before (the shipped posterior: the evidence rows alone) and after
(examples/patient_level/spec.nc: the evidence rows and the patient-cycles), beside the
known values that generated the patients.

    python -m lenasim fit examples/patient_level/spec.yaml   # writes spec.nc beside it
    python examples/patient_level/widths.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.model.posterior import load_posterior
from lenasim.model.spec import posterior_path

HERE = Path(__file__).resolve().parent
SLOPES = (("flare", "log_dose"), ("flare", "first_log_dose"), ("tls", "log_dose"),
          ("neutropenia", "log_dose"), ("flare_severity", "log_dose"))  # fmt: skip


def table(after_spec: Path = HERE / "spec.yaml") -> str:
    truth = json.loads((HERE / "truth.json").read_text())
    before = load_posterior(posterior_path(DEFAULT_SPEC), DEFAULT_SPEC)
    after = load_posterior(posterior_path(after_spec), after_spec)
    sampler = json.loads(after.attrs.get("sampler", "{}"))
    lines = [
        f"{'slope':<28}{'known':>7}  {'before: median [90%]':<24}{'width':>6}  "
        f"{'after: median [90%]':<24}{'width':>6}  {'after/before':>12}"
    ]
    for block, term in SLOPES:
        cells = []
        for post in (before, after):
            v = np.asarray(post.draws.coefs[block][term])
            lo, med, hi = np.quantile(v, [0.05, 0.5, 0.95])
            cells.append((med, lo, hi, hi - lo))
        (m0, l0, h0, w0), (m1, l1, h1, w1) = cells
        lines.append(
            f"{block + '.' + term:<28}{truth['coef'][block][term]:>7.2f}  "
            f"{f'{m0:.2f} [{l0:.2f}, {h0:.2f}]':<24}{w0:>6.2f}  "
            f"{f'{m1:.2f} [{l1:.2f}, {h1:.2f}]':<24}{w1:>6.2f}  {w1 / w0:>12.2f}"
        )
    lines.append(
        f"(before: {before.draws.n_draws} draws of the shipped posterior; after: "
        f"{after.draws.n_draws} draws, {sampler.get('chains', '?')} chains of "
        f"{sampler.get('draws', '?')} after {sampler.get('tune', '?')} tuning steps)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "spec.yaml"))
