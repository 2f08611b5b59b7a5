"""Console: the human-review web UI. Reviewers confirm or correct the inspector's verdicts; their labels
go to the store durably and form an RF1M-style dataset (``adcreative dataset export-labels``) that
retrains RFNet (``adcreative inspect train --data DIR``)."""
