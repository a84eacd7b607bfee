"""LeadPier Sync: pulls LeadPier source statistics into the LE reporting system."""

__version__ = "1.0.0"
SERVICE_NAME = "LeadPier Data Sync Service"

__all__ = ["SERVICE_NAME", "__version__"]
