"""lenasim: per-cycle toxicity of lenalidomide in CLL, fitted to the trials and simulated."""

__version__ = "0.1.0"
