"""Reports generated from the results store, never edited by hand (``python -m benchmark.leaderboard DIR``).

* :mod:`.frame`        records → tables (one row per evaluation / distillation / failure), mean ± std
* :mod:`.stats`        gain over ``random``, fraction of ``full``, Welch t-test, bootstrap interval, Spearman
* :mod:`.tables`       accuracy, gain and cross-architecture tables (missing and failed cells marked)
* :mod:`.serving_cost` the cost of serving IPC {1, 10, 50}: pixel methods re-distil, generators sample
* :mod:`.stages`       a cached one-time stage (GAN pre-training, expert buffer): full cost vs what a run paid
* :mod:`.sensitivity`  accuracy against each swept hyper-parameter
* :mod:`.nas`          the architecture-search application's rank correlations
* :mod:`.plots`, :mod:`.images`  figures and synthetic-set image grids
* :mod:`.build`        all of the above into one :class:`~.build.Report`
* :mod:`.markdown`, :mod:`.page`  that report as ``LEADERBOARD.md`` and the offline ``index.html``
"""
