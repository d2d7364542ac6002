"""The model compiled for nutpie, with the compiled code kept on disk between processes.

nutpie (numba backend) turns the PyTensor log-density-and-gradient and the function that
expands a draw into the trace into two numba C callbacks. PyTensor already caches its
numba functions on disk (``~/.pytensor/numba``, keyed by a hash of the graph and its
constants), but nutpie's C wrappers around them are compiled anew in every process:
~60-80 % of nutpie's compile time on this model. :func:`compile_nutpie` builds the same
wrappers from source with a key derived from PyTensor's, so numba caches them too: a
second process that builds the same model (same spec, evidence and quadrature) loads
them in well under a second. Everything else (the PyTensor graphs and their rewrites,
the initial points, the sampler) is nutpie's own; the result is nutpie's
``CompiledPyMCModel`` and works with ``nutpie.sample`` and ``with_data`` as usual.

If a function cannot be cached (PyTensor gives no key), the wrapper is compiled
uncached, exactly as nutpie would. ``LENASIM_NO_COMPILE_CACHE=1`` turns the cache off.

nutpie, PyMC, PyTensor and numba are imported at the top: the module is imported by
:mod:`lenasim.model.graph` only (the model stage's one door to them).
"""

from __future__ import annotations

import hashlib
import os

import numba
import numpy as np
import nutpie
from nutpie import compile_pymc as ncp
from nutpie.compile_pymc import address_as_void_pointer
from pymc.initial_point import make_initial_point_fn
from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

WRAPPER_VERSION = 1  # bump when the wrapper source below changes

_LOGP_SRC = """
def {name}(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_dim},))
        logp = numba.carray(logp_, ())
{shared}
        logp_val, grad = inner(x{args})
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND_SRC = """
def {name}(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_expanded},))
{shared}
        (values,) = inner(x{args})
        out[...] = values
    except Exception:
        return -2
    return 0
"""


def compile_nutpie(model, var_names=None):
    """nutpie's ``compile_pymc_model(model, backend="numba")``, with disk-cached wrappers.

    Shared data (``pm.Data``) must be 1-D float64 arrays (lenasim's row weights and
    counts are); ``with_data`` replaces them without recompiling, as in nutpie.
    """
    initial_point_fn = ncp._wrap_with_lock(
        make_initial_point_fn(
            model=model,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )
    n_dim, n_expanded, logp_pt, expand_pt, flat_initial_point_fn, shape_info = ncp._make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=initial_point_fn,
        var_names=var_names,
    )
    shared_data, shared_vars = {}, {}
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if var.name in shared_vars and shared_vars[var.name] is not var:
            raise ValueError(f"shared variables must have unique names: {var.name}")
        value = np.array(var.get_value(), order="C", copy=True)
        if value.ndim != 1 or value.dtype != np.float64:
            raise ValueError(f"shared variable {var.name}: 1-D float64 expected, got {value.dtype}")
        value.flags.writeable = False
        shared_data[var.name], shared_vars[var.name] = value, var
    user_data = ncp.make_user_data(shared_vars, shared_data)
    order = list(shared_vars)  # the record's field order: data pointers, sizes, shapes
    sig_logp = numba.types.int64(
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )
    sig_expand = numba.types.int64(
        numba.types.uint64,
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )
    sizes = {"n_dim": n_dim, "n_expanded": n_expanded}
    logp_c = _cached_cfunc("logp", _LOGP_SRC, sig_logp, logp_pt, order, sizes)
    expand_c = _cached_cfunc("expand", _EXPAND_SRC, sig_expand, expand_pt, order, sizes)
    dims, coords = ncp._prepare_dims_and_coords(model, shape_info)
    return ncp.CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info)},
        compiled_logp_func=logp_c,
        compiled_expand_func=expand_c,
        initial_point_func=flat_initial_point_fn,
        shared_data=shared_data,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_pt,
        expand_func=expand_pt,
    )


def _cached_cfunc(kind: str, template: str, sig, fn_pt, order: list[str], sizes: dict):
    """The C callback around PyTensor's numba function ``fn_pt``, cached under a key
    made of PyTensor's own key for that function and everything the source depends on."""
    inner = fn_pt.vm.jit_fn
    names = [v.name for v in fn_pt.get_shared()]
    n = len(order)
    lines = []
    if names:
        lines.append(f"        ud = numba.carray(user_data_, ({3 * n},), np.uint64)")
    for j, name in enumerate(names):
        i = order.index(name)
        lines.append(
            f"        s{j} = numba.carray(address_as_void_pointer(ud[{i}]), (ud[{n + i}],), np.float64)"
        )
    args = "".join(f", s{j}" for j in range(len(names)))
    inner_key = CACHED_SRC_FUNCTIONS.get(inner.py_func)
    use_cache = inner_key is not None and os.environ.get("LENASIM_NO_COMPILE_CACHE") != "1"
    digest = hashlib.sha256(
        repr((WRAPPER_VERSION, nutpie.__version__, kind, inner_key, names, order, sizes)).encode()
    ).hexdigest()[:32]
    name = f"lenasim_nutpie_{kind}_{digest}"
    src = template.format(name=name, shared="\n".join(lines), args=args, **sizes)
    func = compile_numba_function_src(
        src,
        name,
        global_env={"__name__": __name__, "numba": numba, "np": np, "inner": inner,
                    "address_as_void_pointer": address_as_void_pointer},
        cache_key=f"lenasim-nutpie-{digest}" if use_cache else None,
    )  # fmt: skip
    return numba.cfunc(sig, cache=use_cache)(func)
