#!/usr/bin/env bash
# The lab's SIP traffic (started by lab/run.sh in its own process group): a few hundred sipp
# clients register with varied expiries over UDP and TCP, then forever refresh, de-register,
# come back, and send MESSAGEs to offline users (queued by msilo; delivered to a sipp phone
# when such a user registers). Needs SIP_PORT STATE LAB USERS UAC_PORT TCP_PORT SENDER_PORT
# PHONE_PORT in the environment.
set -uo pipefail
# One sipp run as a client; CSV rows on stdin. Quiet: failures go to $STATE/sipp-failures.log.
client() {
	local scenario=$1 port=$2; shift 2
	local csv; csv=$(mktemp "$STATE/sipp/csv.XXXXXX")
	{ echo SEQUENTIAL; cat; } > "$csv"
	local calls=$(($(wc -l < "$csv") - 1))
	(cd "$STATE/sipp" && sipp "127.0.0.1:$SIP_PORT" -sf "$LAB/sipp/$scenario" -inf "$csv" \
		-m "$calls" -r 100 -i 127.0.0.1 -p "$port" -nostdin -timeout 20s -timeout_error "$@") \
		> /dev/null 2>&1 || echo "$(date +%T) sipp $scenario exit $?" >> "$STATE/sipp-failures.log"
	rm -f "$csv"
}

expiry_of() { local e=(30 60 120 300 600 1800 3600); echo "${e[$(($1 % 7))]}"; }

users() { for i in $(seq 1 "$USERS"); do printf 'user%03d;%s;\n' "$i" "$(expiry_of "$i")"; done; }

main() {
	users | client register.xml "$UAC_PORT"
	users | awk 'NR % 10 == 0' | client register.xml "$TCP_PORT" -t t1   # UDP + TCP contacts
	local round=0
	while :; do
		round=$((round + 1))
		users | shuf -n 40 | client register.xml "$UAC_PORT"                              # refresh
		users | shuf -n 8 | sed 's/;[0-9]*;$/;0;/' | client register.xml "$UAC_PORT"         # leave
		printf 'offline%02d;lab message %d;\n' $((round % 20)) "$round" \
			| client message_send.xml "$SENDER_PORT"                                          # queued
		if ((round % 3 == 0)); then   # an offline user comes online: msilo delivers to the phone
			printf 'offline%02d;40;\n' $(((round - 2) % 20)) \
				| client register_contact.xml "$UAC_PORT" -key contact_port "$PHONE_PORT"
		fi
		users | shuf -n 8 | client register.xml "$UAC_PORT"                                 # back
		sleep 5
	done
}

main
