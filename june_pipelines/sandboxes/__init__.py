"""Code execution for untrusted programs: the interface, the process and Docker backends."""
