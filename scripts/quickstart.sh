#!/usr/bin/env bash
# One command from nothing: install, then the quickstart pipeline (about 4 minutes with the install on 2 CPU cores): the
# shipped crafter-basic plays a world it never saw (shown live, recorded), is evaluated next to the expert
# and the random agent on the same seeds, then a tiny model of your own is trained from scratch.
# Rerunning keeps what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/rig pipeline quickstart --out "${WORK:-runs/quickstart}" --workers 2 "$@"
echo "report: ${WORK:-runs/quickstart}/report.md"
