#!/usr/bin/env bash
# Load benchmark of a `party` deployment on this machine: a dealer and a server (release build),
# then CLIENTS concurrent clients of QUERIES queries each from the task's test split, every link
# authenticated and encrypted. Prints throughput, per-client latency and the server's resident
# memory after the first and the last QUERIES queries (from its per-query log lines).
#   scripts/bench/deploy_load.sh BUNDLE TASK [CLIENTS] [QUERIES] [NET]
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=${1:?bundle}; task=${2:?task}; clients=${3:-4}; queries=${4:-50}; net=${5:-none}
bin=$PWD/.build/release/securerouter
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for n in dealer server $(seq -f "client%g" 1 "$clients"); do $bin keygen --name "$n" --out-dir "$work" > /dev/null; done
cat "$work"/client*.pub > "$work/clients.pub"
$bin party --role dealer --listen 127.0.0.1:0 --key "$work/dealer.key" --trust "$work/server.pub" --trust "$work/clients.pub" \
    --max-sessions "$clients" > "$work/dealer.out" 2> "$work/dealer.err" &
until [ -s "$work/dealer.out" ]; do sleep 0.1; done
dealer=$(head -1 "$work/dealer.out" | cut -d' ' -f2)
$bin party --role server --bundle "$bundle" --listen 127.0.0.1:0 --dealer "$dealer" --key "$work/server.key" \
    --trust "$work/dealer.pub" --trust "$work/clients.pub" --max-sessions "$clients" --net "$net" > "$work/server.out" 2> "$work/server.err" &
until [ -s "$work/server.out" ]; do sleep 0.1; done
server=$(head -1 "$work/server.out" | cut -d' ' -f2)
start=$(date +%s.%N)
pids=()
for i in $(seq 1 "$clients"); do
    $bin party --role client --bundle "$bundle" --connect "$server" --dealer "$dealer" --key "$work/client$i.key" \
        --trust "$work/server.pub" --trust "$work/dealer.pub" --task "$task" --limit "$queries" --net "$net" \
        --json "$work/client$i.json" --quiet > /dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
end=$(date +%s.%N)
python3 - "$work" "$clients" "$queries" "$start" "$end" <<'PY'
import json, re, sys
work, clients, queries, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
wall = end - start
total = clients * queries
for i in range(1, clients + 1):
    s = json.load(open(f"{work}/client{i}.json"))["summary"]
    print(f"client {i}: {s['n']} queries, accuracy {100 * s.get('accuracy', 0):.2f}%, latency mean {s['latency_mean']:.3f} s, models {s['routing_histogram']}")
rss = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"\((\d+) in total, .*RSS ([\d.]+) MB\)", open(f"{work}/server.err").read())}
print(f"{total} queries in {wall:.1f} s: {total / wall:.2f} queries/s; server RSS {rss.get(queries)} MB after {queries} queries, {rss.get(total)} MB after {total}")
PY
