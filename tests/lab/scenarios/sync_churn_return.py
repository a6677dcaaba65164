"""13c. sync-churn with change=weight, event=return (see sync_churn.py)."""
from . import sync_churn

NEEDS_CTL = True
OPTIONS = dict(sync_churn.OPTIONS, change='weight', event='return')
lab_kwargs = sync_churn.lab_kwargs
run = sync_churn.run
