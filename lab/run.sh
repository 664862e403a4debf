#!/usr/bin/env bash
# `make lab`: a real SIP stack on loopback with rtm watching it.
#
# Starts a Kamailio (registrar, uac trunks, dispatcher, msilo, evapi, JSON-RPC; lab/kamailio.cfg),
# an upstream carrier (a second Kamailio, lab/kamailio-upstream.cfg) and a sipp carrier, a
# few hundred sipp clients that register with varied expiries, refresh, de-register and send
# MESSAGEs to offline users; then serves rtm wired to all of it. Ctrl-C stops everything this
# script started, by PID. State and logs: var/lab/. Ports (override via the environment):
#   LAB_SIP_PORT 5060  LAB_HTTP_PORT 8088  LAB_EVAPI_PORT 8448  LAB_UPSTREAM_PORT 5070
#   LAB_CARRIER_PORT 5072  RTM_PORT 8080  LAB_USERS 300  LAB_STATE var/lab
#   LAB_CLIENT_PORTS "5160 5161 5162 5163" (sipp's own: UDP clients, TCP clients, sender, phone)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LAB=$ROOT/lab
STATE=${LAB_STATE:-$ROOT/var/lab}
SIP_PORT=${LAB_SIP_PORT:-5060}
HTTP_PORT=${LAB_HTTP_PORT:-8088}
EVAPI_PORT=${LAB_EVAPI_PORT:-8448}
UP_PORT=${LAB_UPSTREAM_PORT:-5070}
CARRIER_PORT=${LAB_CARRIER_PORT:-5072}
RTM_PORT=${RTM_PORT:-8080}
USERS=${LAB_USERS:-300}
# sipp's own local ports (lab/traffic.sh): UDP clients, TCP clients, senders, receiving phone
read -r UAC_PORT TCP_PORT SENDER_PORT PHONE_PORT <<< "${LAB_CLIENT_PORTS:-$((SIP_PORT + 100)) \
	$((SIP_PORT + 101)) $((SIP_PORT + 102)) $((SIP_PORT + 103))}"
SCHEMA=/usr/share/kamailio/db_sqlite
DB=$STATE/kamailio.sqlite
. "$LAB/common.sh"
require_tools kamailio sipp sqlite3 curl

rpc() {
	curl -s -m 5 -X POST -d "{\"jsonrpc\":\"2.0\",\"method\":\"$1\",\"params\":${2:-[]},\"id\":1}" \
		"http://127.0.0.1:$HTTP_PORT/RPC"
}

fresh_state() {
	rm -rf "$STATE"; mkdir -p "$STATE/run" "$STATE/run-upstream" "$STATE/sipp"
	cat "$SCHEMA"/{standard,usrloc,msilo,uac}-create.sql | sqlite3 "$DB"
	sqlite3 "$DB" "PRAGMA journal_mode=WAL;" >/dev/null
	sqlite3 "$DB" "INSERT INTO uacreg (l_uuid, l_username, l_domain, r_username, r_domain, realm,
		auth_username, auth_password, auth_proxy, expires) VALUES
		('carrier-a','trunk-a','127.0.0.1','lab','127.0.0.1:$UP_PORT','127.0.0.1','lab','secret',
		 'sip:127.0.0.1:$UP_PORT',60),
		('carrier-b','trunk-b','127.0.0.1','lab','127.0.0.1:$CARRIER_PORT','127.0.0.1','lab','secret',
		 'sip:127.0.0.1:$CARRIER_PORT',60);"
	printf '1 sip:127.0.0.1:%s 0 0 duid=carrier-a;name=carrier-a\n1 sip:127.0.0.1:%s 0 0 duid=carrier-b;name=carrier-b\n' \
		"$UP_PORT" "$CARRIER_PORT" > "$STATE/dispatcher.list"
}

seed_rtm() {
	RTM_DB=$STATE/rtm.db "$ROOT/.venv/bin/python" -c "import os; from server import store; store.migrate(os.environ['RTM_DB'])"
	sqlite3 "$STATE/rtm.db" "
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $USERS)
		INSERT INTO accounts (username, owner, caller_id, caller_id_2, \"group\")
		SELECT printf('user%03d', i), 'Lab User ' || i, printf('+390655%05d', i), '',
		       CASE i % 4 WHEN 0 THEN 'Sales' WHEN 1 THEN 'Support' WHEN 2 THEN 'NOC' ELSE 'Ops' END
		FROM n;
		INSERT INTO trunks (name, host, port, transport, virtual_number) VALUES
		('carrier-a', '127.0.0.1', $UP_PORT, 'UDP', '+390600001'),
		('carrier-b', '127.0.0.1', $CARRIER_PORT, 'UDP', '+390600002');"
	PASSWORD=$("$ROOT/.venv/bin/python" -c "import secrets; print(secrets.token_urlsafe(12))")
	echo "$PASSWORD" | RTM_DB=$STATE/rtm.db "$ROOT/.venv/bin/rtm" user add lab --role admin >/dev/null
}

start_sip_stack() {
	kamailio -f "$LAB/kamailio-upstream.cfg" -DD -E -m 32 -M 8 -A "UP_PORT=$UP_PORT" \
		-A "RUNDIR=\"$STATE/run-upstream\"" > "$STATE/upstream.log" 2>&1 &
	PIDS+=($!)
	(cd "$STATE/sipp" && exec sipp -sf "$LAB/sipp/carrier_uas.xml" -i 127.0.0.1 -p "$CARRIER_PORT" \
		-nostdin -deadcall_wait 0) > "$STATE/carrier.log" 2>&1 &
	PIDS+=($!)
	(cd "$STATE/sipp" && exec sipp -sf "$LAB/sipp/message_recv.xml" -i 127.0.0.1 -p "$PHONE_PORT" \
		-nostdin) > "$STATE/phone.log" 2>&1 &
	PIDS+=($!)
	# -m/-M: room for a 100k-contact ul.dump (54 MB built in one worker, queued in shm)
	kamailio -f "$LAB/kamailio.cfg" -DD -E -m 512 -M 256 \
		-A "SIP_PORT=$SIP_PORT" -A "HTTP_PORT=$HTTP_PORT" -A "EVAPI_BIND=\"127.0.0.1:$EVAPI_PORT\"" \
		-A "DBURL=\"sqlite://$DB\"" -A "DBFILE=\"$DB=WAL;\"" -A "RUNDIR=\"$STATE/run\"" \
		-A "CTL_SOCK=\"unix:$STATE/run/kamailio_ctl\"" -A "DS_LIST=\"$STATE/dispatcher.list\"" \
		-A "CONTACT_ADDR=\"127.0.0.1:$SIP_PORT\"" -A "SELF_URI=\"sip:127.0.0.1:$SIP_PORT\"" \
		> "$STATE/kamailio.log" 2>&1 &
	PIDS+=($!)
	wait_for "Kamailio JSON-RPC on :$HTTP_PORT" rpc core.uptime
}

fresh_state
seed_rtm
start_sip_stack
# Own process group (setsid), so stopping it also stops the sipp run it is waiting on.
SIP_PORT=$SIP_PORT STATE=$STATE LAB=$LAB USERS=$USERS UAC_PORT=$UAC_PORT TCP_PORT=$TCP_PORT \
	SENDER_PORT=$SENDER_PORT PHONE_PORT=$PHONE_PORT setsid bash "$LAB/traffic.sh" &
TRAFFIC=$!
PIDS+=("-$TRAFFIC")

TRUNKS="kamailio+http://127.0.0.1:$HTTP_PORT/RPC"
echo "lab: Kamailio sip:127.0.0.1:$SIP_PORT (UDP+TCP), JSON-RPC http://127.0.0.1:$HTTP_PORT/RPC,"
echo "     evapi tcp://127.0.0.1:$EVAPI_PORT, carriers :$UP_PORT (Kamailio) and :$CARRIER_PORT (sipp)"
echo "lab: rtm on http://127.0.0.1:$RTM_PORT  -  sign in as 'lab' with password: $PASSWORD"
echo "lab: Ctrl-C stops everything"
RTM_DB=$STATE/rtm.db RTM_PORT=$RTM_PORT RTM_HOST=127.0.0.1 \
	RTM_REGISTRATIONS="kamailio+http://127.0.0.1:$HTTP_PORT/RPC" \
	RTM_KAMAILIO_EVAPI="tcp://127.0.0.1:$EVAPI_PORT" RTM_POLL_ACCOUNTS=10 \
	RTM_TRUNKS=$TRUNKS RTM_QUEUE="msilo+sqlite:///$DB" \
	"$ROOT/.venv/bin/rtm" serve &
PIDS+=($!)
wait "${PIDS[-1]}"
