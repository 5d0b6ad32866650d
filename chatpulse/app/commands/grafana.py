"""``chatpulse grafana build [--check] [--out DIR]`` and ``chatpulse grafana push``.

``build`` writes the provisioning files (default: the package's own ``grafana/provisioning``);
``--check`` writes nothing and exits 1 when the files differ from the generator's output (CI).
``push`` sends the dashboards, alert rules, contact point and notification policy to a running
Grafana (``CHATPULSE_GRAFANA_URL``, ``CHATPULSE_GRAFANA_TOKEN``) through its HTTP API; the
datasources must exist there already (provisioned from ``datasources/chatpulse.yaml``).
"""

from __future__ import annotations

import argparse
import copy
import logging
import re
import sys
from pathlib import Path
from typing import Any

from chatpulse.core.errors import ChatpulseError, ConfigError
from chatpulse.core.settings import Settings
from grafana import alerts, build
from grafana.dashboards import all_dashboards

__all__ = ["cmd_build", "cmd_push", "push"]

log = logging.getLogger(__name__)


_ENV_REF = re.compile(r"\$__env\{(\w+)\}")


def cmd_build(settings: Settings, args: argparse.Namespace) -> int:
    """Write (or with ``--check`` compare) the provisioning files; 1 when ``--check`` fails."""
    root = Path(args.out) if getattr(args, "out", None) else build.PROVISIONING_DIR
    if getattr(args, "check", False):
        problems = build.check(root)
        if problems:
            for line in problems:
                print(f"grafana: {line}", file=sys.stderr)
            print(
                f"grafana: {root} is not what the generator writes; run `chatpulse grafana build`",
                file=sys.stderr,
            )
            return 1
        print(f"grafana: {root} is up to date ({len(build.render())} files)")
        return 0
    changed = build.write(root)
    for rel in changed:
        print(f"wrote {root / rel}")
    print(f"grafana: {len(changed)} of {len(build.render())} files changed in {root}")
    return 0


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter else value) or None


def _contact_point_for_api(settings: Settings) -> dict[str, Any]:
    token = _secret(settings.webhook_token)
    secret = _secret(settings.webhook_hmac_secret)
    if not token and not secret:
        raise ConfigError(
            "grafana push: webhook_token (CHATPULSE_WEBHOOK_TOKEN) or webhook_hmac_secret "
            "(CHATPULSE_WEBHOOK_HMAC_SECRET) must be set, or the clipper would reject alerts"
        )
    receiver = copy.deepcopy(alerts.contact_points()[0]["receivers"][0])
    cfg = receiver["settings"]
    cfg["url"] = settings.grafana_webhook_url
    if token:
        cfg["authorization_credentials"] = token
    else:
        del cfg["authorization_scheme"], cfg["authorization_credentials"]
    if secret:
        cfg["hmacConfig"]["secret"] = secret
    else:
        del cfg["hmacConfig"]
    leftover = _ENV_REF.search(repr(cfg))
    if leftover:  # a new $__env reference the push does not know how to resolve
        raise ConfigError(f"grafana push: cannot resolve {leftover.group(0)}")
    return {
        "uid": receiver["uid"],
        "name": alerts.CLIPPER_RECEIVER,
        "type": receiver["type"],
        "settings": cfg,
        "disableResolveMessage": receiver["disableResolveMessage"],
    }


def _interval_s(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(text[:-1]) * units[text[-1]]


def _rule_groups() -> list[dict[str, Any]]:
    groups = alerts.alerting_files()["rules.yaml"]["groups"]
    out = []
    for group in groups:
        rules = []
        for rule in group["rules"]:
            api_rule = dict(rule)
            api_rule.update(folderUID=alerts.FOLDER, ruleGroup=group["name"], orgID=1)
            rules.append(api_rule)
        out.append(
            {
                "title": group["name"],
                "folderUid": alerts.FOLDER,
                "interval": _interval_s(group["interval"]),
                "rules": rules,
            }
        )
    return out


def push(api: Any, settings: Settings) -> dict[str, int]:
    """Send everything to Grafana through ``api`` (a ``grafana_client.GrafanaApi``).

    Creates the ``chatpulse`` folder when missing, overwrites the dashboards, replaces the rule
    groups, creates or updates the clipper's contact point (secrets from the settings) and sets
    the notification policy tree.  Returns counts of what was sent.  Raises
    :class:`ConfigError` when no webhook secret is set, and lets ``grafana_client`` errors
    through.
    """
    from grafana_client.client import GrafanaClientError

    contact_point = _contact_point_for_api(settings)
    try:
        api.folder.get_folder(alerts.FOLDER)
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        api.folder.create_folder(build.DASHBOARD_FOLDER, uid=alerts.FOLDER)
    boards = all_dashboards()
    for board in boards.values():
        api.dashboard.update_dashboard(
            {
                "dashboard": board,
                "folderUid": alerts.FOLDER,
                "overwrite": True,
                "message": "chatpulse grafana push",
            }
        )
    groups = _rule_groups()
    for group in groups:
        api.alertingprovisioning.update_rule_group(alerts.FOLDER, group["title"], group)
    existing = api.alertingprovisioning.get_contactpoints(name=alerts.CLIPPER_RECEIVER) or []
    if any(cp.get("uid") == contact_point["uid"] for cp in existing):
        api.alertingprovisioning.update_contactpoint(contact_point["uid"], contact_point)
    else:
        api.alertingprovisioning.create_contactpoint(contact_point)
    tree = {k: v for k, v in alerts.policies()[0].items() if k != "orgId"}
    api.alertingprovisioning.set_notification_policy_tree(tree)
    return {
        "dashboards": len(boards),
        "rule_groups": len(groups),
        "rules": sum(len(g["rules"]) for g in groups),
        "contact_points": 1,
    }


def cmd_push(settings: Settings, args: argparse.Namespace) -> int:
    """Push to the Grafana at ``grafana_url`` with ``grafana_token``; 1 when Grafana refuses."""
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaException

    if not settings.grafana_url:
        raise ConfigError("grafana push: grafana_url (CHATPULSE_GRAFANA_URL) is not set")
    token = _secret(settings.grafana_token)
    api: Any = GrafanaApi.from_url(settings.grafana_url, credential=token, timeout=10.0)
    try:
        counts = push(api, settings)
    except GrafanaException as exc:
        raise ChatpulseError(f"grafana push: Grafana refused: {exc}") from exc
    except OSError as exc:
        raise ChatpulseError(f"grafana push: cannot reach {settings.grafana_url}: {exc}") from exc
    log.info("grafana push done", extra=counts)
    print(
        f"grafana: pushed {counts['dashboards']} dashboards, {counts['rules']} alert rules in "
        f"{counts['rule_groups']} groups, the contact point and the notification policy"
    )
    return 0
