import json,glob,statistics as st
def lines(f): return [json.loads(l) for l in open(f) if l.strip().startswith('{')]
for pat in ['soak50-*.jsonl','soak0-*.jsonl']:
  for f in sorted(glob.glob(pat)):
    print('##',f)
    print('min  req/s  purch/s  p50  p99  max_ms  rss  log_pos  proj_lag_s  sync_ms/b  req/b  srv_cpu%  others_cpu%  loadavg1m  failed  repeat_p99')
    for d in lines(f):
      if d.get('scenario')=='soak_minute':
        print(d['minute'],d['requests_per_s'],d['purchases_per_s'],d['p50_ms'],d['p99_ms'],d['max_ms'],d['server_rss_mb'],d['log_position'],d['projection_lag_s'],d['sync_ms_per_batch'],d['requests_per_batch'],d['server_cpu_pct'],d['others_cpu_pct'],d['loadavg_1m'],d['failed'],d['repeats']['p99_ms'])
      else:
        s={k:d.get(k) for k in ['purchases','requests','first_minute_purchases_per_s','last_minute_purchases_per_s','last_over_first','worst_p99_ms','worst_repeat_p99_ms','server_peak_rss_mb','verified','balances_exact','complete','errors','problems','failed','targets','repeats','server_purchases_replayed','out_of_stock']}
        print('summary',json.dumps(s))
print('## hot')
keys=['purchases_per_s','p99_ms','sync_ms_per_batch','requests_per_batch','p50_ms','max_ms','events_per_batch','verified','errors']
res={}
for f in sorted(glob.glob('hot-*.jsonl')):
  d=lines(f)[-1]; print(f,[d[k] for k in keys]); res.setdefault(f.split('-')[1],[]).append(d)
for k in keys[:7]:
  mo=st.median([d[k] for d in res['old']]); mn=st.median([d[k] for d in res['new']])
  print(k,'median old',mo,'new',mn,'new/old',round(mn/mo,3))
