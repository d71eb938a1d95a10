#!/usr/bin/env bash
# Regenerates docs/images/report-corpus.png: the report on the labelled corpus in
# ../shared/data/corpus (832 SWE-bench Verified runs of two agents), imported as stored,
# verified with each run's own reports, rendered by headless Chromium.
# Usage: docs/images/make-report-corpus.sh [CORPUS_DIR]   (needs the report extra and chromium)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="${1:-$here/../../../shared/data/corpus}"
py="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
verified=()
for run in gruckion__mini-swe-agent/swebench_results/20251118_gemini-3-pro-74pct \
           lgetter__swe-agent-trajectory-analysis/20250511_sweagent_lm_32b; do
  case "$run" in
    gruckion__*) reports="$corpus/$run/logs" ;;
    *) reports="$corpus/$run/results/results.json" ;;
  esac
  id="${run##*/}"
  "$py" -m agentsignals import "$corpus/$run/trajs" -o "$work/$id.traces.jsonl" --run-id "$id" --no-progress
  "$py" -m agentsignals verify "$work/$id.traces.jsonl" --reports "$reports" --run-id "$id" -o "$work/$id.attempts.jsonl"
  verified+=("$work/$id.attempts.jsonl")
done
"$py" -m agentsignals report "${verified[@]}" --by agent --title "832 SWE-bench Verified runs" -o "$work/report.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1300,3400 \
  --screenshot="$here/report-corpus.png" "file://$work/report.html"
echo "wrote $here/report-corpus.png"
