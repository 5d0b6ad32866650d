"""Hype, foreseen: a per-channel forecast of a hype moment in the next seconds.

* :mod:`forecast.features` — pure feature extraction, labels, the time split and the
  evaluation (no I/O, no numpy);
* :mod:`forecast.model` — the classifier (scikit-learn, the ``forecast`` extra, imported only
  when a model is trained);
* :mod:`forecast.store` — the database runner (``chatpulse forecast``, ``chatpulse eval
  forecast``); its SQL is in ``queries.sql``.
"""
