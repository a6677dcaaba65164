"""The lab's end-to-end tests, one module each: run(lab) checks one behaviour on a lab that is up
and returns the one line with its figure; NEEDS_CTL says it is skipped without ecmplbctl.

A module may also have OPTIONS (name -> default; `lab.py test NAME --set name=value` changes
one, converted to the default's type), then it is run as run(lab, opts); and lab_kwargs(opts),
extra keyword arguments for the Lab it runs on (e.g. its ecmplb configuration)."""
import importlib

NAMES = ['ospf-ecmp', 'spread', 'same-backend', 'same-backend-lookup', 'lb-failure', 'lb-return',
         'drain', 'pool-change', 'health', 'dr-gre', 'control-stall', 'flood', 'sync-churn',
         'sync-churn-add', 'sync-churn-return', 'sync-restart', 'fragments', 'fleet-change',
         'fleet-cutoff', 'fleet-invalid', 'fleet-conflict']


def load(name):
  """The module of test `name` (one of NAMES)."""
  return importlib.import_module(f'{__name__}.{name.replace("-", "_")}')


def options(module, pairs):
  """module.OPTIONS with the NAME=VALUE strings of pairs applied; ValueError names a bad one."""
  defaults = getattr(module, 'OPTIONS', {})
  opts = dict(defaults)
  for pair in pairs:
    name, sep, value = pair.partition('=')
    if not sep or name not in defaults:
      raise ValueError(f'--set {pair}: expected NAME=VALUE with NAME one of {sorted(defaults) or "(none)"}')
    kind = type(defaults[name])
    try:
      opts[name] = kind(value)
    except ValueError:
      raise ValueError(f'--set {pair}: {name} takes a {kind.__name__}') from None
  return opts
