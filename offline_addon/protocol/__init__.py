"""Pure: what the server says and what it means. No I/O, no clock, no threads."""
