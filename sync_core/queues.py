"""The queue of runs /trigger accepted: its name, its poison queue and how often the host delivers a message."""

# function_app.py keeps its own copy of RUNS_QUEUE: it imports nothing from sync_core when the host loads it.
RUNS_QUEUE = "leadpier-sync-runs"
POISON_QUEUE = f"{RUNS_QUEUE}-poison"  # where the host moves a message after MAX_DEQUEUE_COUNT failed deliveries
MAX_DEQUEUE_COUNT = 3  # host.json extensions.queues.maxDequeueCount
