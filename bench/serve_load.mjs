// serve_load.mjs — a loopback load generator for `steer serve` (Node's built-in
// fetch; no npm packages): S concurrent streams, each sending R greedy
// completions of T tokens one after another, with steering mode
//   none       no steering
//   same       every request: the same inline vector at resid_post of layer 0
//   different  stream i: its own random vector at site SITES[i % 5], layer i % L
// Prints one JSON line: generated tokens, wall seconds, tok/s, p50/p99 latency, and from
// /metrics the server's forward-pass time (wall, and CPU of the scheduler thread: all of
// the forward's work with --threads 1, unaffected by other load on the machine).
// usage: node serve_load.mjs URL MODE STREAMS REQS TOKENS D LAYERS
const [url, mode, S, R, T, D, L] = process.argv.slice(2);
const streams = +S, reqs = +R, tokens = +T, d = +D, layers = +L;
const SITES = ['resid_post', 'mlp_in', 'attn_out', 'resid_mid', 'resid_pre'];
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.2;
const vec = () => Array.from({ length: d }, rnd);
const same = vec();
function steering(i) {
  if (mode === 'none') return {};
  if (mode === 'same') return { steering: [{ values: same, site: 'resid_post', layer: 0, scale: 1.0 }] };
  return { steering: [{ values: vec(), site: SITES[i % SITES.length], layer: i % layers, scale: 1.0 }] };
}
const bodies = Array.from({ length: streams }, (_, i) => JSON.stringify({
  prompt: `Once upon a time ${i}`, max_tokens: tokens, temperature: 0, ...steering(i),
}));
const lat = [];
let gen = 0, errors = 0;
async function stream(i) {
  for (let r = 0; r < reqs; r++) {
    const t0 = performance.now();
    const res = await fetch(url + '/v1/completions', { method: 'POST', body: bodies[i],
      headers: { 'Content-Type': 'application/json' } });
    const js = await res.json();
    if (res.status !== 200) { errors++; continue; }
    lat.push((performance.now() - t0) / 1000);
    gen += js.usage.completion_tokens;
  }
}
async function metrics() {
  const t = await (await fetch(url + '/metrics')).text();
  const g = (k) => +(t.match(new RegExp('^' + k + ' (\\S+)$', 'm')) || [0, NaN])[1];
  return { cpu: g('steer_forward_cpu_seconds_total'), fwd: g('steer_forward_seconds_total'),
    steps: g('steer_forward_steps_total'), rows: g('steer_batch_rows_total') };
}
const m0 = await metrics();
const t0 = performance.now();
await Promise.all(Array.from({ length: streams }, (_, i) => stream(i)));
const wall = (performance.now() - t0) / 1000;
const m1 = await metrics();
lat.sort((a, b) => a - b);
const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null;
console.log(JSON.stringify({ mode, streams, requests: streams * reqs, errors, generated: gen, wall_s: +wall.toFixed(3),
  tok_s: +(gen / wall).toFixed(2), p50_s: +q(0.5).toFixed(3), p99_s: +q(0.99).toFixed(3),
  fwd_s: +(m1.fwd - m0.fwd).toFixed(3), fwd_cpu_s: +(m1.cpu - m0.cpu).toFixed(3),
  tok_per_fwd_cpu_s: +(gen / (m1.cpu - m0.cpu)).toFixed(1), rows_per_step: +((m1.rows - m0.rows) / (m1.steps - m0.steps)).toFixed(2) }));
