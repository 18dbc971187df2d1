"""What every report shows, built once: rows (``rows``), test cases (``cases``) and chart data (``charts``).

The renderers (the terminal and ``report.md`` in ``pipeline/report.py``; JUnit, the CI summary and JSON in
``pipeline/ci_outputs.py``; ``report.html`` in ``reports/html_report.py``) only lay these out. Everything
here is light: records in, plain strings and numbers out; no torch, numpy or onnx.
"""
