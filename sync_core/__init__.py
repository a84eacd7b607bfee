"""LeadPier Sync: pulls LeadPier source statistics into the LE reporting system."""

import os

__version__ = "1.0.0"
SERVICE_NAME = "LeadPier Data Sync Service"

# The app uses no pydantic plugin. Without this, pydantic looks for plugins in the metadata of every installed
# distribution when it builds its first model: about 10 ms of a new worker's first run. An explicit setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

__all__ = ["SERVICE_NAME", "__version__"]
