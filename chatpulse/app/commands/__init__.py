"""The handlers of ``chatpulse`` commands, one module per area.

Each ``cmd_*(settings, args) -> int`` is called by :func:`chatpulse.app.cli.main` with the
parsed settings and returns the exit code; the service work it starts lives in the services.
"""
