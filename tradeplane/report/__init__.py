"""``tradeplane report``: one self-contained HTML page (and optionally PNGs) of a deployment's
journal or a backtest's outputs.

Split by what each part models: ``model`` (the plain data a report shows), ``journal_data``
(a live deployment's journal, read-only, to that data), ``backtest_data`` (a backtest's output
dir to that data), ``drift_csv`` (``live_drift.csv``), ``figures`` (data to matplotlib figures),
``page`` (figures to one HTML file with no script and nothing fetched) and ``build`` (the two
entry points the CLI calls).

Why matplotlib drawing SVG rather than plotly with its JavaScript inlined: one renderer draws
both the page and ``--png`` (plotly's images need kaleido and a Chrome it downloads, which
cannot be fetched here), the page holds no script so it cannot fail on one and opens where
scripts are blocked, and the demo's page weighs about 110 kB where plotly.js alone is several MB.
What it gives up is zoom and pan; hover text on fills and deployment events is kept (SVG
titles, no script).
"""
