"""13b. sync-churn with change=add, event=fail (see sync_churn.py)."""
from . import sync_churn

NEEDS_CTL = True
OPTIONS = dict(sync_churn.OPTIONS, change='add', event='fail')
lab_kwargs = sync_churn.lab_kwargs
run = sync_churn.run
