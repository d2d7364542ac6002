"""The cited evidence: ``data/evidence.csv`` (one row per figure a trial reported, with
its source) and ``data/arms.yaml`` (each trial arm's protocol, setting, partner drugs
and prophylaxis), loaded and validated by ``table`` (the table), ``arms`` (the arms)
and ``rows`` (one row's checks); ``citations`` (plain citations for what users read).

May import core only.
"""
