"""Grafana provisioning: the generator of dashboards and alert rules, and its output.

``grafana/provisioning/`` holds the generated files (committed, and shipped in the wheel).
"""
