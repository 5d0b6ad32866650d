"""Streams and audiences (issue 15): which broadcasts a channel had, who chatted in them, how
each went and how communities differ.

Pure computations live in plain modules with no I/O (:mod:`analytics.streams`,
:mod:`analytics.segments`, :mod:`analytics.signatures`); the SQL is in
``sql/queries/analytics.sql`` (read by the core loader); :mod:`analytics.runner` is the thin
job that keeps ``chat.streams`` and its companions current, and :mod:`analytics.cli` the
commands ``chatpulse analyze`` and ``chatpulse compare``.  Nothing here imports numpy or
scikit-learn.
"""
