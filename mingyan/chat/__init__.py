"""The chat service: turns conversations into engine requests and collects results."""
