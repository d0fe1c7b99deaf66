"""``tradeplane report``: one self-contained HTML page (and optionally PNGs) of a deployment's
journal or a backtest's outputs.

Split by what each part models: ``model`` (the plain data a report shows), ``journal_data``
(a live deployment's journal, read-only, to that data), ``backtest_data`` (a backtest's output
dir to that data), ``drift_csv`` (``live_drift.csv``), ``figures`` (data to matplotlib figures),
``page`` (figures to one HTML file with no script and nothing fetched) and ``build`` (the two
entry points the CLI calls).
"""
