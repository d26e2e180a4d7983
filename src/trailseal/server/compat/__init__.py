"""Vendor façades (ARCHITECTURE §3): thin translation layers that let a vendor's published
client talk to trailseal unmodified, each mounted at ``/compat/<vendor>``. They hold no
storage or crypto of their own: every event they take is an ordinary entry of its
organization's log. ``shared/compat/<vendor>.md`` is each one's wire contract."""

import re

from starlette.routing import Mount

__all__ = ["FacadeMount"]


class FacadeMount(Mount):
    """A mount whose pattern also takes paths holding a line feed: Starlette compiles
    ``^PREFIX/(?P<path>.*)$`` and ``.`` stops at ``\n``, so such a request (``%0A`` in an
    id) would fall through to the native app and be answered in the wrong shape."""

    def __init__(self, path: str, app: object) -> None:
        super().__init__(path, app=app)  # type: ignore[arg-type]
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)
