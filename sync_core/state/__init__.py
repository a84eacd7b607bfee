"""The app's state in Azure Storage: the blob documents, the store over the one container, the run lock, the queues."""
