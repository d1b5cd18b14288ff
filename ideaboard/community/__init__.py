"""Fan-club communities: the directory, a community's threads, a thread and its replies."""
