"""trailseal.cli: the ``trailseal`` command (click)."""
