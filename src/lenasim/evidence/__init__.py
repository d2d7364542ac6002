"""The cited evidence: ``data/evidence.csv`` (one row per figure a trial reported, with
its source) and ``data/arms.yaml`` (each trial arm's protocol, setting, partner drugs
and prophylaxis), loaded and validated by ``table``.

May import core only.
"""
