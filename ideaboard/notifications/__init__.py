"""The notification centre, the header's unread count, and the fan-out's wiring."""
