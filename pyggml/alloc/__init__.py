"""ggml-alloc in Python: the tensor/graph allocators' planning, placement for placement.

llama.cpp: ggml/src/ggml-alloc.c.  Modules, each named after the reference concept:

- ``ir``: the allocator graph IR (scenario JSON in, outcome JSON out; ``from_graph`` extracts
  it from a ``pyggml.ggml.Graph``), shared with the reference side (pyggml.reference.alloc).
- ``dyn_tallocr`` (ggml_dyn_tallocr), ``tallocr`` (ggml_tallocr), ``buffers`` (the backend
  buffers a buffer type hands out), ``gallocr`` (ggml_gallocr's planning: ``GallocrPlan``),
  ``ctx_tensors`` (ggml_backend_alloc_ctx_tensors_from_buft[_size] and its buffer splitting).
- ``scenario``: ``plan(scenario) -> outcome``, what the paritychecker diffs.
- ``apply``: ``Gallocr``, pyggml's graph allocator for real graphs (plans, then places tensors
  in CPU backend buffers; needs_realloc from a reserve-time cache).
- ``lifetime``: first/last use and alloc/free steps of each tensor, as gallocr derives them.
- ``build`` (hand-built IR graphs), ``checks`` (tests/test-alloc.cpp's checks),
  ``materialize`` (an IR graph as real ggml tensors), ``cgraph`` (reading struct ggml_cgraph).
"""

from typing import Any

from pyggml.alloc.dyn_tallocr import DynTallocr
from pyggml.alloc.gallocr import GallocrPlan, State
from pyggml.alloc.ir import BuftSpec, Graph, Scenario, from_graph
from pyggml.alloc.lifetime import Lifetime, lifetimes
from pyggml.alloc.scenario import plan, run
from pyggml.alloc.tallocr import Tallocr

__all__ = ["BuftSpec", "DynTallocr", "Gallocr", "GallocrPlan", "Graph", "Lifetime", "Scenario", "State",
           "Tallocr", "from_graph", "lifetimes", "plan", "run"]


def __getattr__(name: str) -> Any:
    # Gallocr needs pyggml.ggml (backend buffers); load it on first use
    if name == "Gallocr":
        from pyggml.alloc.apply import Gallocr

        return Gallocr
    raise AttributeError(name)
