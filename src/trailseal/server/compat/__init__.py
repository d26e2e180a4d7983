"""Vendor façades (ARCHITECTURE §3): thin translation layers that let a vendor's published
client talk to trailseal unmodified, each mounted at ``/compat/<vendor>``. They hold no
storage or crypto of their own: every event they take is an ordinary entry of its
organization's log. ``shared/compat/<vendor>.md`` is each one's wire contract."""
