"""The proof suite: faults, properties and security of the Offline Add-on (issue 6)."""
