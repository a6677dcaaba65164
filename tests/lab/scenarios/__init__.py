"""The lab's end-to-end tests, one module each: run(lab) checks one behaviour on a lab that is up
and returns the one line with its figure; NEEDS_CTL says it is skipped without ecmplbctl."""
import importlib

NAMES = ['ospf-ecmp', 'spread', 'same-backend', 'same-backend-lookup', 'lb-failure', 'lb-return',
         'drain', 'pool-change', 'health', 'dr-gre', 'control-stall']


def load(name):
  """The module of test `name` (one of NAMES)."""
  return importlib.import_module(f'{__name__}.{name.replace("-", "_")}')
