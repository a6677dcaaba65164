#!/usr/bin/python3
"""Turns bench/daemon/bench.py's results.json into a small report: OUT/report.md with the
figures and three plots drawn by gnuplot (Debian's gnuplot-nox):

    throughput_vs_flows.png   DR throughput at full offered load, ecmplb and testpmd macswap
    latency_cdf.png           one-way latency CDF at 50% of each case's PDR rate
    ecmplb_vs_testpmd.png     PDR (loss <= bound) of each ecmplb case and of testpmd

    bench/daemon/report.py OUT/results.json
"""
import json
import os
import shutil
import subprocess
import sys


def mpps(pps):
  return pps / 1e6 if pps else 0.0


def cdf_points(lat):
  """(latency us, fraction) points: the histogram's CDF when the generator gave one, else its
  percentiles."""
  if not lat:
    return []
  l = lat['latency_ns']
  if l.get('cdf'):
    return [(ns / 1e3, frac) for ns, frac in l['cdf']]
  pts = [(l['min'], 0.0), (l['p50'], 0.5), (l['p90'], 0.9), (l['p99'], 0.99),
         (l['p99_9'], 0.999), (l['max'], 1.0)]
  return [(ns / 1e3, f) for ns, f in pts]


def gnuplot(script, cwd):
  if shutil.which('gnuplot') is None:
    print('report: gnuplot not found (apt-get install gnuplot-nox): no plots', file=sys.stderr)
    return False
  subprocess.run(['gnuplot'], input=script, text=True, cwd=cwd, check=True)
  return True


def main():
  path = sys.argv[1]
  out = os.path.dirname(os.path.abspath(path))
  r = json.load(open(path))
  cases = r['cases']
  tp = r['testpmd']
  names = list(cases) + ['testpmd_macswap']
  allc = dict(cases, testpmd_macswap=tp)

  # Data files.
  with open(os.path.join(out, 'sweep.dat'), 'w') as f:
    f.write('# flows ecmplb_rx_mpps testpmd_rx_mpps\n')
    tps = {x['flows']: x for x in r['sweep'].get('testpmd', [])}
    for x in r['sweep'].get('ecmplb', []):
      t = tps.get(x['flows'], {})
      f.write(f"{x['flows']} {x['rx_mpps']:.4f} {t.get('rx_mpps', float('nan')):.4f}\n")
  with open(os.path.join(out, 'pdr.dat'), 'w') as f:
    for i, n in enumerate(names):
      f.write(f'{i} "{n}" {mpps(allc[n]["pdr_pps"]):.4f}\n')
  cdf_files = []
  for n in names:
    pts = cdf_points(allc[n].get('latency'))
    if pts:
      fn = f'cdf_{n}.dat'
      with open(os.path.join(out, fn), 'w') as f:
        for us, frac in pts:
          f.write(f'{us:.3f} {frac:.6f}\n')
      cdf_files.append((fn, n))

  sweep_plot = """
set output 'throughput_vs_flows.png'
set title 'DR, 64-byte frames, full offered load: received Mpps vs flows'
set logscale x
set xlabel 'flows'
set ylabel 'Mpps'
set yrange [0:*]
plot 'sweep.dat' using 1:2 with linespoints title 'ecmplb', '' using 1:3 with linespoints title 'testpmd macswap'
unset logscale x
""" if r['sweep'].get('ecmplb') else ''
  plots = gnuplot(f"""
set terminal pngcairo size 800,500
set grid
{sweep_plot}
set output 'ecmplb_vs_testpmd.png'
set title 'Highest rate with loss <= {r['setup']['loss_bound']}'
set style fill solid 0.6
set boxwidth 0.6
set xlabel ''
set xtics rotate by -20
set yrange [0:*]
plot 'pdr.dat' using 1:3:xtic(2) with boxes notitle
set output 'latency_cdf.png'
set title 'One-way latency at 50% of the PDR rate'
set xtics norotate
set logscale x
set xlabel 'latency (us)'
set ylabel 'fraction of packets'
set yrange [0:1]
set key bottom right
plot {', '.join(f"'{fn}' using 1:2 with steps title '{n}'" for fn, n in cdf_files)}
""", out)

  # The text report.
  s = r['setup']
  lines = [f"# ecmplb whole-daemon benchmark ({s['started']})", '',
           f"Worker cores {s['worker_cores']}, generator core {s['gen_core']}, "
           f"{s['size']}-byte frames, loss bound {s['loss_bound']}, trials of "
           f"{s['trial_seconds']} s, connection table {s['conntrack_capacity']} flows per worker.",
           '', '| case | flows | full load rx Mpps | PDR Mpps | ratio to testpmd | cycles/packet '
           '| worker busy | p50 us | p99 us | checker errors |', '|---|---|---|---|---|---|---|---|---|---|']
  base = tp['pdr_pps']
  for n in names:
    c = allc[n]
    w = (c.get('at_pdr') or {}).get('worker') or [{}]
    cpp = w[0].get('cycles_per_packet')
    busy = w[0].get('busy_time_share')
    lat = (c.get('latency') or {}).get('latency_ns', {})
    errs = sum(x['check']['errors'] for x in (c['full'], c.get('at_pdr'), c.get('latency')) if x)
    lines.append(
        f"| {n} | {c['flows']} | {c['full']['rx']['mpps']:.2f} | {mpps(c['pdr_pps']):.2f} | "
        f"{c['pdr_pps'] / base if base else float('nan'):.2f} | "
        f"{'%.0f' % cpp if cpp else '-'} | {'%.0f%%' % (100 * busy) if busy is not None else '-'} | "
        f"{lat.get('p50', 0) / 1e3:.1f} | {lat.get('p99', 0) / 1e3:.1f} | {errs} |")
  if r['sweep'].get('ecmplb'):
    lines += ['', '| flows | ecmplb rx Mpps | testpmd rx Mpps |', '|---|---|---|']
    tps = {x['flows']: x for x in r['sweep'].get('testpmd', [])}
    for x in r['sweep']['ecmplb']:
      t = tps.get(x['flows'], {})
      lines.append(f"| {x['flows']} | {x['rx_mpps']:.2f} | {t.get('rx_mpps', float('nan')):.2f} |")
  if plots:
    lines += ['', '![throughput vs flows](throughput_vs_flows.png)',
              '![ecmplb vs testpmd](ecmplb_vs_testpmd.png)', '![latency CDF](latency_cdf.png)']
  with open(os.path.join(out, 'report.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
