"""The ingestion bus: chat through NATS JetStream (the optional extra ``chatpulse[bus]``).

``chatpulse collect --sink nats`` publishes each parsed event to the stream (subject
``chat.<platform>.<channel>``, the event's unique key as ``Nats-Msg-Id``); ``chatpulse ingest``
(one or more writer processes, on any host) consumes it through one durable pull consumer and
writes with :class:`collector.writer.Writer`, acking only after the commit.  Collectors share
the channel list through two key-value buckets: the list itself and the leases.

Nothing here is imported by the base commands: ``nats`` is needed only by the modules below.
"""
