"""The upstream clients: HTTP with retries and a deadline, LeadPier (and its login), LE."""
