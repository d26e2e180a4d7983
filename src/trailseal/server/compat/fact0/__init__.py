"""The Fact0 façade: the published ``fact0-sdk`` 1.0.6 client, unmodified, against trailseal
(base URL ``https://<host>/compat/fact0``). :mod:`.responses` is the wire, :mod:`.models`
the translation to and from the native model."""

from trailseal.server.compat.fact0.responses import PREFIX, create_facade, mount

__all__ = ["PREFIX", "create_facade", "mount"]
