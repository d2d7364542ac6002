"""What a run wrote, read back and summarised: per-cycle, cumulative and dose tables and
the headline numbers (``summaries``), draws.nc written (``netcdf``) and read back
(``netcdf_read``), a run folder checked against its manifest (``verify``) and loaded for
a comparison (``runs``), the paired differences
of a comparison (``paired``; by CrCl band ``subgroup_compare``), numbers as a reader sees
them (``formats``) and the run's tables as NumPy columns, written and read back as pandas
would without importing it (``frame``). The lowest layer of outputs: imports no other
part of it."""
