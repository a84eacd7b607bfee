"""The business rules: report days, the transform, campaign codes and the schedule; pure, no network, no storage."""
