"""D2M-Bench: a benchmark suite and evaluation harness for dataset distillation.

The harness (this package) knows datasets, evaluation architectures, the evaluation protocol, grids,
the results store and the backends; distillation methods are plugins (`d2m`, `baselines`, or any
installed package exposing the entry-point group ``d2m_bench.distillers``).
"""

__version__ = "0.1.0"
