#!/usr/bin/env bash
# `make lab CLUSTER=1`: the cluster of docs/scaling.md on loopback, every part real.
#
# PostgreSQL (rtm's state and Kamailio's tables in one database), two Kamailio nodes writing
# `location` with usrloc db_mode 3 and their own server_id (lab/kamailio.cfg with
# WITH_PGSQL), a sipp carrier both register a trunk to, sipp traffic on each node
# (lab/traffic.sh), Redis, two `rtm serve` instances sharing state through it, and HAProxy
# in front of them. Ctrl-C stops everything this script started, by PID. State and logs:
# var/lab-cluster/ (PostgreSQL's data in a throw-away /tmp directory it owns). Ports
# (override via the environment):
#   RTM_PORT 8080 (HAProxy)  LAB_RTM_PORTS "8081 8082" (the instances)  LAB_PG_PORT 5433
#   LAB_REDIS_PORT 6380  LAB_CARRIER_PORT 5072  LAB_USERS 200 (per node)  LAB_STATE var/lab-cluster
#   LAB_SIP_PORT 5060, LAB_HTTP_PORT 8088: node 1's; node 2's are 10 above. Or each node's
#   ports at once: LAB_NODE1_PORTS "SIP HTTP EVAPI UAC TCP SENDER PHONE" (the last four are
#   sipp's own, lab/traffic.sh), LAB_NODE2_PORTS likewise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LAB=$ROOT/lab
STATE=${LAB_STATE:-$ROOT/var/lab-cluster}
RTM_PORT=${RTM_PORT:-8080}
PG_PORT=${LAB_PG_PORT:-5433}
REDIS_PORT=${LAB_REDIS_PORT:-6380}
SIP_PORT=${LAB_SIP_PORT:-5060}
HTTP_PORT=${LAB_HTTP_PORT:-8088}
CARRIER_PORT=${LAB_CARRIER_PORT:-5072}
USERS=${LAB_USERS:-200}
PG_BIN=/usr/lib/postgresql/15/bin
PGDATA=
. "$LAB/common.sh"
require_tools kamailio sipp curl redis-server redis-cli haproxy "$PG_BIN/postgres"
# runuser can return before the postmaster has finished its shutdown checkpoint: removing
# the data directory then made it PANIC, and it still held its port. Ask it for a fast
# shutdown and wait until it let go (postmaster.pid goes last), then remove its files.
lab_cleanup() {
	[ -n "$PGDATA" ] || return 0
	local pidfile="$PGDATA/data/postmaster.pid" i
	[ -e "$pidfile" ] && kill -INT "$(head -1 "$pidfile")" 2>/dev/null
	for ((i = 0; i < 200; i++)); do [ -e "$pidfile" ] || break; sleep 0.1; done
	[ -e "$pidfile" ] && kill -KILL "$(head -1 "$pidfile")" 2>/dev/null
	rm -rf "$PGDATA"
}

# PostgreSQL refuses to run as root: as root, its files and process belong to `postgres`.
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

DB_URL="postgresql://postgres@127.0.0.1:$PG_PORT/rtm"
psql_rtm() { "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 "$DB_URL" "$@"; }

start_postgres() {
	PGDATA=$(mktemp -d /tmp/rtm-lab-pg.XXXXXX)
	[ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
	as_postgres "$PG_BIN/initdb" -D "$PGDATA/data" -U postgres --auth=trust --no-sync -E UTF8 \
		--locale=C > "$STATE/initdb.log" 2>&1
	printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" \
		"$PG_PORT" "$PGDATA" >> "$PGDATA/data/postgresql.conf"
	as_postgres "$PG_BIN/postgres" -D "$PGDATA/data" > "$STATE/postgres.log" 2>&1 &
	PIDS+=($!)
	wait_for "PostgreSQL on :$PG_PORT" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
	"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres rtm
}

# Kamailio's own tables (kamdbctl's scripts), then rtm's migration, which uses them as they
# are and puts its change-log triggers on location and silo; then the lab's accounts, the
# trunk, and an admin.
seed_database() {
	local schema=/usr/share/kamailio/postgres
	for name in standard usrloc msilo uac; do psql_rtm -f "$schema/$name-create.sql" > /dev/null; done
	RTM_DB=$DB_URL "$ROOT/.venv/bin/python" -c \
		"import os; from server import postgres; postgres.migrate(os.environ['RTM_DB'])"
	# One trunk, registered by each node: the trunks table shows it once per node.
	psql_rtm -c "INSERT INTO uacreg (l_uuid, l_username, l_domain, r_username, r_domain, realm,
		auth_username, auth_password, auth_proxy, expires) VALUES ('carrier', 'trunk',
		'127.0.0.1', 'lab', '127.0.0.1:$CARRIER_PORT', '127.0.0.1', 'lab', 'secret',
		'sip:127.0.0.1:$CARRIER_PORT', 60)"
	psql_rtm -c "INSERT INTO accounts (username, owner, caller_id, caller_id_2, \"group\")
		SELECT 'user' || lpad(i::text, 3, '0'), 'Lab User ' || i, '+390655' || lpad(i::text, 5, '0'),
		       '', (ARRAY['Sales', 'Support', 'NOC', 'Ops'])[i % 4 + 1]
		FROM generate_series(1, $USERS) AS i;
		INSERT INTO trunks (name, host, port, transport, virtual_number) VALUES
		('carrier', '127.0.0.1', $CARRIER_PORT, 'UDP', '+390600001');" > /dev/null
	PASSWORD=$("$ROOT/.venv/bin/python" -c "import secrets; print(secrets.token_urlsafe(12))")
	echo "$PASSWORD" | RTM_DB=$DB_URL "$ROOT/.venv/bin/rtm" user add lab --role admin >/dev/null
}

# Node n: its ports (10 apart per node unless given), its own run directory and traffic.
start_node() {
	local n=$1 base=$((10 * ($1 - 1))) sip http evapi uac tcp sender phone
	local given="LAB_NODE${n}_PORTS"
	read -r sip http evapi uac tcp sender phone <<< "${!given:-$((SIP_PORT + base)) \
		$((HTTP_PORT + base)) $((HTTP_PORT + base + 1)) $((SIP_PORT + base + 100)) \
		$((SIP_PORT + base + 101)) $((SIP_PORT + base + 102)) $((SIP_PORT + base + 103))}"
	local dir=$STATE/node$n
	NODES+="sip:127.0.0.1:$sip (JSON-RPC :$http) "
	mkdir -p "$dir/run" "$dir/sipp"
	printf '1 sip:127.0.0.1:%s 0 0 duid=carrier;name=carrier\n' "$CARRIER_PORT" > "$dir/dispatcher.list"
	kamailio -f "$LAB/kamailio.cfg" -DD -E -m 64 -M 32 \
		-A WITH_PGSQL=1 -A "DBURL=\"postgres://postgres@127.0.0.1:$PG_PORT/rtm\"" \
		-A "SERVER_ID=$n" -A ULDBMODE=3 \
		-A "SIP_PORT=$sip" -A "HTTP_PORT=$http" -A "EVAPI_BIND=\"127.0.0.1:$evapi\"" \
		-A "RUNDIR=\"$dir/run\"" -A "CTL_SOCK=\"unix:$dir/run/kamailio_ctl\"" \
		-A "DS_LIST=\"$dir/dispatcher.list\"" -A "CONTACT_ADDR=\"127.0.0.1:$sip\"" \
		-A "SELF_URI=\"sip:127.0.0.1:$sip\"" > "$dir/kamailio.log" 2>&1 &
	PIDS+=($!)
	wait_for "Kamailio node $n JSON-RPC on :$http" curl -sf -m 2 -X POST \
		-d '{"jsonrpc":"2.0","method":"core.uptime","id":1}' "http://127.0.0.1:$http/RPC"
	SIP_PORT=$sip STATE=$dir LAB=$LAB USERS=$USERS UAC_PORT=$uac TCP_PORT=$tcp \
		SENDER_PORT=$sender PHONE_PORT=$phone setsid bash "$LAB/traffic.sh" &
	PIDS+=("-$!")
	TRUNKS+="kamailio+http://127.0.0.1:$http/RPC?node=node$n "
}

start_rtm() {
	local port=$1
	RTM_DB=$DB_URL RTM_REDIS="redis://127.0.0.1:$REDIS_PORT/0" RTM_PORT=$port RTM_HOST=127.0.0.1 \
		RTM_TRUNKS=$TRUNKS RTM_PUBLIC_URL="http://127.0.0.1:$RTM_PORT" \
		"$ROOT/.venv/bin/rtm" serve > "$STATE/rtm-$port.log" 2>&1 &
	PIDS+=($!)
	wait_for "rtm on :$port" curl -sf "http://127.0.0.1:$port/healthz"
}

start_haproxy() {
	cat > "$STATE/haproxy.cfg" <<-EOF
	defaults
	    mode http
	    timeout connect 2s
	    timeout client 1h
	    timeout server 1h
	    timeout tunnel 1h
	frontend rtm
	    bind 127.0.0.1:$RTM_PORT
	    default_backend rtm
	backend rtm
	    balance roundrobin
	    option httpchk GET /healthz
	    server rtm1 127.0.0.1:$RTM_A check inter 500 fall 2 rise 1
	    server rtm2 127.0.0.1:$RTM_B check inter 500 fall 2 rise 1
	EOF
	haproxy -db -f "$STATE/haproxy.cfg" > "$STATE/haproxy.log" 2>&1 &
	PIDS+=($!)
	wait_for "HAProxy on :$RTM_PORT" curl -sf "http://127.0.0.1:$RTM_PORT/healthz"
}

rm -rf "$STATE"; mkdir -p "$STATE/carrier"
start_postgres
seed_database
(cd "$STATE/carrier" && exec sipp -sf "$LAB/sipp/carrier_uas.xml" -i 127.0.0.1 -p "$CARRIER_PORT" \
	-nostdin -deadcall_wait 0) > "$STATE/carrier.log" 2>&1 &
PIDS+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
	> "$STATE/redis.log" 2>&1 &
PIDS+=($!)
wait_for "Redis on :$REDIS_PORT" redis-cli -p "$REDIS_PORT" ping
TRUNKS="" NODES=""
start_node 1
start_node 2
read -r RTM_A RTM_B <<< "${LAB_RTM_PORTS:-$((RTM_PORT + 1)) $((RTM_PORT + 2))}"
start_rtm "$RTM_A"
start_rtm "$RTM_B"
start_haproxy
echo "lab: PostgreSQL $DB_URL, Redis redis://127.0.0.1:$REDIS_PORT"
echo "lab: Kamailio nodes $NODES; a sipp carrier on :$CARRIER_PORT"
echo "lab: rtm on http://127.0.0.1:$RTM_PORT (HAProxy; instances :$RTM_A and :$RTM_B)" \
	" -  sign in as 'lab' with password: $PASSWORD"
echo "lab: Ctrl-C stops everything"
wait "${PIDS[-1]}"
