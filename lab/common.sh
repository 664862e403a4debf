# Shared by lab/run.sh and lab/cluster.sh (sourced, after STATE is set): the processes a lab
# started (PIDS), stopping them all on exit or Ctrl-C, the tools it needs, readiness polls.
PIDS=()

# require_tools TOOL...: each on PATH (or an executable path), and rtm installed.
require_tools() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { echo "lab: $tool is missing (make apt installs it)" >&2; exit 1; }
	done
	[ -x "$ROOT/.venv/bin/rtm" ] || { echo "lab: run 'make install' first" >&2; exit 1; }
}

# Stop every process the lab started, newest first, and wait for each (nothing keeps a port).
# A negative entry is a process group we created (a traffic loop and its sipp runs). A lab
# may define lab_cleanup for what is not a process (a throw-away data directory).
stop_all() {
	trap - INT TERM EXIT
	echo; echo "lab: stopping ${#PIDS[@]} processes"
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM -- "${PIDS[i]}" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "${pid#-}" 2>/dev/null || true; done
	if declare -F lab_cleanup >/dev/null; then lab_cleanup; fi
	echo "lab: stopped; state and logs are in $STATE/"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# wait_for WHAT COMMAND...: poll until COMMAND succeeds (readiness), at most 20 s.
wait_for() {
	local what=$1; shift
	for _ in $(seq 1 400); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
	echo "lab: $what did not come up; see $STATE/*.log" >&2; exit 1
}
