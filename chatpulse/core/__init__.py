"""The core every service imports: settings, database, migrations, errors, logs, metrics,
the data contract's constants and the named-query loader.

It imports no service (collector, scorer, detector, clipper, grafana) and nothing of
:mod:`chatpulse.app`; ``tests/unit/test_layers.py`` checks it.  See docs/architecture.md.
"""
