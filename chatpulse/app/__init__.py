"""The application layer: the only code that composes services.

The ``chatpulse`` command (:mod:`chatpulse.app.cli`), its handlers
(:mod:`chatpulse.app.commands`), ``up`` and ``demo`` (:mod:`chatpulse.app.stack`), ``doctor``,
``report`` and ``forget``.  Signal handlers are installed here, not in services.  Nothing
imports this package but itself (``tests/unit/test_layers.py``).  See docs/architecture.md.
"""
