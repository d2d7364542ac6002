"""Model specs (models/*.yaml): which terms each hazard uses, the priors and their
rationale, the quadrature and the sampler settings. Validated strictly."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from lenasim.core.errors import ConfigError
from lenasim.core.schema import Seed, Strict
from lenasim.core.vocabulary import active
from lenasim.core.yamlio import load_config
from lenasim.evidence.given import as_given_bytes


class Normal(Strict):
    """Normal(mu, sigma) prior on a logit-scale parameter, with its rationale; with
    ``dist: lognormal`` the coefficient is exp(theta), theta ~ Normal(mu, sigma): a
    positive slope, as the BLRM of dose-finding (OncoBayes2) gives its log-dose slope."""

    dist: Literal["normal", "lognormal"] = "normal"
    mu: float = 0.0
    sigma: float = Field(..., gt=0)
    why: str = Field(..., min_length=10, description="One line: why this prior.")

    def moments(self) -> tuple[float, float]:
        """Mean and SD of the coefficient itself."""
        if self.dist == "normal":
            return self.mu, self.sigma
        mean = math.exp(self.mu + self.sigma**2 / 2)
        return mean, mean * math.sqrt(math.expm1(self.sigma**2))

    def unconstrained(self) -> Normal:
        """The normal prior with this prior's mean and SD (the constraint removed)."""
        if self.dist == "normal":
            return self
        mean, sd = self.moments()
        return Normal(
            mu=mean, sigma=sd, why=self.why + " (unconstrained: normal, same mean and SD)"
        )


class HalfNormal(Strict):
    """Half-normal(sigma) prior on a standard deviation, with its rationale."""

    sigma: float = Field(..., gt=0)
    why: str = Field(..., min_length=10)


class EventSpec(Strict):
    terms: list[str]

    @model_validator(mode="after")
    def _known(self) -> EventSpec:
        terms = active().terms
        bad = [t for t in self.terms if t not in terms]
        if bad:
            raise ValueError(f"unknown terms {bad}; known terms: {list(terms)}")
        if len(set(self.terms)) != len(self.terms):
            raise ValueError(f"repeated terms in {self.terms}")
        return self


class BlockPriors(Strict):
    """Priors for one hazard: intercept, per-term coefficients, default coefficient."""

    intercept: Normal | None = None
    coef: dict[str, Normal] = Field(default_factory=dict)
    default_coef: Normal | None = None
    tau: HalfNormal | None = None
    frailty: HalfNormal | None = None


class Sampler(Strict):
    draws: int = Field(1000, ge=50)
    tune: int = Field(1000, ge=50)
    chains: int = Field(4, ge=1)
    target_accept: float = Field(0.95, gt=0.5, lt=1.0)
    seed: Seed = 20261123
    backend: Literal["pymc", "nutpie"] = "pymc"


class ModelSpec(Strict):
    name: str
    description: str = ""
    quadrature_nodes: int = Field(
        21, ge=3, le=101, description="Nodes of the frailty quadrature (see quadrature_rule)."
    )
    quadrature_rule: Literal["trapezoid", "gauss_hermite"] = Field(
        "trapezoid",
        description="How the likelihood integrates the patient frailty: evenly spaced nodes on "
        "+-6 SD (trapezoid; 21 nodes keep the log likelihood within ~0.01 nats of an exact "
        "integral at the posterior) or Gauss-Hermite (needs ~31 nodes for that; 9 were off by "
        "0.1 nats on average and 1 nat at worst when the frailty SD is ~2).",
    )
    monotone: bool = Field(
        True,
        description="Keep the log-normal (positive) slopes of the priors; false replaces each "
        "by the normal prior with the same mean and SD (a sensitivity analysis).",
    )
    trial_effects: Literal["normal", "student_t"] = Field(
        "normal",
        description="Distribution of the between-trial effects u_k,t / tau_k: normal, or "
        "Student-t with `trial_effects_df` degrees of freedom (heavy tails, as RBesT's "
        'REdist = "t").',
    )
    trial_effects_df: float = Field(5.0, gt=2.0, le=100.0)
    link: Literal["logit", "cloglog_daily"] = Field(
        "logit",
        description="How a cycle's risk follows from the linear predictor: logit (a per-cycle "
        "log-odds, whatever the cycle's length) or cloglog_daily (a hazard per day on drug: "
        "complementary log-log with log(days on drug / 28) as an exposure offset, so a "
        "longer cycle on drug carries more risk; issue 23 item 3).",
    )
    dose: Literal["planned", "delivered"] = Field(
        "planned",
        description="Which dose the likelihood gives a fitted trial's patients: the protocol's "
        "(planned) or, where the report gives it, the dose delivered (groups of patients "
        "capped at the doses they received, evidence/data/as_given.yaml; issue 23 item 2).",
    )
    cycles_at_risk: Literal["point", "distributed"] = Field(
        "point",
        description="Cycles at risk of a `patients` row: the row's value for every patient "
        "(point), or log-normal per patient around it (distributed: spread 0.4 on the log "
        "scale, 0.64 where the value was assumed; three Gauss-Hermite points; "
        "lenasim.model.given).",
    )
    events: dict[str, EventSpec]
    severity: EventSpec
    priors: dict[str, BlockPriors]
    sampler: Sampler = Sampler()

    @model_validator(mode="after")
    def _complete(self) -> ModelSpec:
        vocab = active()
        events, severity = vocab.event_names, vocab.severity.name
        if set(self.events) != set(events):
            raise ValueError(f"events must be exactly {list(events)}, got {sorted(self.events)}")
        blocks = set(events) | {severity, "all"}
        bad = set(self.priors) - blocks
        if bad:
            raise ValueError(f"priors: unknown blocks {sorted(bad)}; use {sorted(blocks)}")
        for block in vocab.hazards:
            for t in self.block_terms(block):
                self.prior(block, t)  # raises if missing
            self.prior(block, "intercept")
            if block != severity:
                self.prior(block, "tau")
                self.prior(block, "frailty")
        return self

    def block_terms(self, block: str) -> tuple[str, ...]:
        if block == active().severity.name:
            return tuple(self.severity.terms)
        return tuple(self.events[block].terms)

    def terms_map(self) -> dict[str, tuple[str, ...]]:
        """Hazard -> its terms, for the active vocabulary's hazards (events, then severity)."""
        return {b: self.block_terms(b) for b in active().hazards}

    def prior(self, block: str, param: str) -> Normal | HalfNormal:
        """The prior of ``param`` in ``block``: the block's own, else the 'all' block's;
        with ``monotone: false`` a log-normal slope prior comes back unconstrained."""
        got = self._prior(block, param)
        if isinstance(got, Normal) and not self.monotone:
            return got.unconstrained()
        return got

    def positive_terms(self, block: str) -> tuple[str, ...]:
        """The terms of ``block`` whose coefficient is positive in every draw."""
        return tuple(
            t
            for t in self.block_terms(block)
            if getattr(self.prior(block, t), "dist", "") == "lognormal"
        )

    def trial_df(self) -> float | None:
        """Degrees of freedom of Student-t trial effects (None: normal)."""
        return self.trial_effects_df if self.trial_effects == "student_t" else None

    def _prior(self, block: str, param: str) -> Normal | HalfNormal:
        for b in (block, "all"):
            bp = self.priors.get(b)
            if bp is None:
                continue
            if param in ("intercept", "tau", "frailty"):
                got = getattr(bp, param)
            else:
                got = bp.coef.get(param) or bp.default_coef
            if got is not None:
                return got
        raise ValueError(f"no prior for {block}.{param}: add it under priors.{block} or priors.all")

    def scaled(self, factor: float) -> ModelSpec:
        """The same spec with every prior scale multiplied by ``factor`` (sensitivity)."""
        data = self.model_dump()
        for bp in data["priors"].values():
            for key in ("intercept", "default_coef", "tau", "frailty"):
                if bp.get(key):
                    bp[key]["sigma"] *= factor
            for c in bp["coef"].values():
                c["sigma"] *= factor  # for a log-normal slope: the SD of its log
        data["name"] = f"{self.name}-prior-x{factor:g}"
        return ModelSpec.model_validate(data)

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def hash(self) -> str:
        """Hash of what defines the posterior (terms, priors, quadrature), not of the
        sampler settings: a posterior is stale when its target changed, not its sampler."""
        data = self.model_dump(mode="json", exclude={"sampler", "description"})
        if data.get("link") == "logit":  # the default: posteriors fitted before it existed
            del data["link"]  # stay current
        for key, default in (("dose", "planned"), ("cycles_at_risk", "point")):
            if data.get(key) == default:  # likewise (issue 23 item 2)
                del data[key]
        if "dose" in data or "cycles_at_risk" in data:  # their data are part of the target
            data["as_given_sha256"] = hashlib.sha256(as_given_bytes()).hexdigest()
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def load_spec(path: str | Path) -> ModelSpec:
    """Load and validate a model spec; errors name the file, the key path and the fix."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: model spec not found (the default is models/default.yaml)")
    return load_config(path, ModelSpec, "model spec", "a model spec",
                       "name, events, severity, priors, ...")  # fmt: skip


def posterior_path(spec_path: str | Path) -> Path:
    """Where the fitted posterior of a spec lives: models/default.yaml -> models/default.nc."""
    return Path(spec_path).with_suffix(".nc")


def plots_dir(spec_path: str | Path) -> Path:
    """Where the posterior plots of a spec go: models/default.yaml -> models/default/."""
    return Path(spec_path).with_suffix("")
