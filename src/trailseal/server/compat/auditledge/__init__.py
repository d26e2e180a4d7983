"""The Auditledge façade: the published ``auditledge`` 0.1.1 client, unmodified, against
trailseal (base URL ``https://<host>/compat/auditledge/v1``). :mod:`.responses` is the wire,
:mod:`.models` the translation to and from the native model."""

from trailseal.server.compat.auditledge.responses import PREFIX, create_facade, mount

__all__ = ["PREFIX", "create_facade", "mount"]
