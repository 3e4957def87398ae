"""Open and click measurement (issue 12): consent, classification, the batched event writer,
rollups and the summary reports read."""
