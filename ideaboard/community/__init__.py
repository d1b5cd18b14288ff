"""Fan-club communities: the directory, a community's threads, a thread and its replies."""

from . import promote  # noqa: F401  (its routes join the community blueprint)
