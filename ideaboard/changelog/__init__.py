"""The shipped changelog and the Atom feeds."""
