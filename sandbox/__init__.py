"""Local stand-ins for the app's outside world: Azurite storage, fake LeadPier and LE servers, sample data."""
