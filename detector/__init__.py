"""The detector: emote bursts and hype moments.

:mod:`detector.model` is the pure model (series in, events out: no I/O, no clock),
:mod:`detector.plan` the runner's pure decisions (which windows to re-judge, on which counts,
which stored events change), :mod:`detector.runner` reads the rows, runs the model and writes
``chat.emote_bursts`` / ``chat.hype_moments`` exactly once, :mod:`detector.synth` makes
synthetic chat for tests and benchmarks.  See docs/architecture.md.
"""
