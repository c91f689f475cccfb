#!/usr/bin/env bash
# The production stack on loopback: nginx (HTTPS) in front of two gunicorn instances of the app,
# one task worker, against PostgreSQL and Redis.
#
#   deploy/stack.sh start          (make stack)         start everything in the background
#   deploy/stack.sh status         (make stack-status)  each process, its pid and whether it answers
#   deploy/stack.sh stop           (make stack-stop)    stop everything by pid and wait for it
#   deploy/stack.sh install-nginx  (make nginx)         Debian's nginx, when root with apt
#   deploy/stack.sh manage ARGS...                      manage.py with the stack's configuration
#   deploy/stack.sh render-nginx                        only write var/nginx/conf/nginx.conf
#
# Configuration comes from the environment (the README's table: DATABASE_URL, REDIS_URL,
# EMAIL_HOST, EMAIL_PORT, SITE_URL, SECRET_KEY, ...); only what is unset gets the loopback default
# below, and `start` prints every default it applied. The stack's own knobs:
#   STACK_VAR_DIR        var                 pid files (run/), logs (log/), nginx prefix, TLS
#   STACK_HTTPS_PORT     8443                nginx, HTTPS
#   STACK_HTTP_PORT      8080                nginx, HTTP (redirects to HTTPS)
#   STACK_APP_PORTS      8001,8002           one gunicorn instance per port
#   STACK_APP_WORKERS    2                   gunicorn worker processes per instance
#   STACK_TLS_CERT, STACK_TLS_KEY            your certificate (default: self-signed, made once)
#   STACK_START_TIMEOUT  40                  seconds to wait for every process to answer
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${STACK_PYTHON:-$ROOT/.venv/bin/python}
VAR=${STACK_VAR_DIR:-$ROOT/var}
case "$VAR" in /*) ;; *) VAR=$ROOT/$VAR ;; esac
RUN=$VAR/run
LOG=$VAR/log
STATE=$RUN/stack.env # what `start` chose (ports, paths): read back by status and stop

say() { printf '%s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------- processes

# A pid is alive when it exists and is not a zombie.
alive() {
	local pid=$1 state
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
	[ "$state" != Z ]
}

# The pid in a pid file, when that process is still the one we started (its command line holds
# the marker), so that a stale pid file never makes us signal another program.
pid_of() {
	local name=$1 marker=$2 file=$RUN/$1.pid pid
	[ -s "$file" ] || return 1
	pid=$(tr -dc '0-9' <"$file")
	alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
	printf '%s' "$pid"
}

# Every live process of the process group (session) that `start` gave a process, whose command
# line still holds the marker: a gunicorn master's workers, say, after the master was killed.
group_members() {
	local pgid=$1 marker=$2 pid
	for pid in $(ps -e -o pid= -o pgid= | awk -v g="$pgid" '$2 == g {print $1}'); do
		alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" \
			&& printf '%s ' "$pid"
	done
	return 0
}

# start_detached NAME LOGFILE COMMAND...: a new session (its own process group), output to the
# log, pid to var/run/NAME.pid. setsid does not fork here (a script's background job is not a
# group leader), so $! is the command's own pid; checked below anyway.
start_detached() {
	local name=$1 logfile=$2
	shift 2
	setsid "$@" >>"$logfile" 2>&1 </dev/null &
	local pid=$!
	printf '%s\n' "$pid" >"$RUN/$name.pid"
	sleep 0.2
	if ! alive "$pid"; then
		tail -n 30 "$logfile" >&2 || true
		die "$name exited at once (log: $logfile)"
	fi
}

# -------------------------------------------------------------------------------------- state

load_state() {
	HTTPS_PORT=${STACK_HTTPS_PORT:-8443}
	HTTP_PORT=${STACK_HTTP_PORT:-8080}
	APP_PORTS=${STACK_APP_PORTS:-8001,8002}
	if [ -f "$STATE" ]; then
		# shellcheck disable=SC1090
		. "$STATE"
	fi
	IFS=, read -r -a PORTS <<<"$APP_PORTS"
	APPS=()
	for i in "${!PORTS[@]}"; do APPS+=("app-$((i + 1))"); done
}

# The marker each process's command line holds (see pid_of).
marker_of() {
	case "$1" in
	nginx) printf 'nginx: master process' ;;
	worker) printf 'manage.py' ;;
	app-*) printf -- '--bind 127.0.0.1:%s' "${PORTS[${1#app-} - 1]}" ;;
	esac
}

# ------------------------------------------------------------------------------------- nginx

find_nginx() {
	command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && printf '/usr/sbin/nginx'; } || return 1
}

install_nginx() {
	if NGINX=$(find_nginx); then
		say "nginx: $NGINX"
		return 0
	fi
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "Installing Debian's nginx (apt-get install nginx)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq nginx >/dev/null 2>&1 \
			|| { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; } \
			|| die "apt-get install nginx failed"
		NGINX=$(find_nginx) || die "nginx is still missing after apt-get install nginx"
		say "nginx: $NGINX"
		return 0
	fi
	say "No nginx, and not root with apt-get to install Debian's package: make stack cannot"
	say "start (install nginx yourself); the system test (tests/system) is skipped."
	return 1
}

# ------------------------------------------------------------------------------------- start

DEFAULTED=()
default() { # default NAME VALUE [SHOWN]: set NAME when unset, and remember it for the summary
	local name=$1 value=$2 shown=${3:-$2}
	if [ -z "${!name+x}" ] || [ -z "${!name}" ]; then
		export "$name=$value"
		DEFAULTED+=("$name=$shown")
	else
		export "${name?}"
	fi
}

configure() {
	mkdir -p "$RUN" "$LOG" "$VAR/nginx/conf" "$VAR/tls"
	HTTPS_PORT=${STACK_HTTPS_PORT:-8443}
	HTTP_PORT=${STACK_HTTP_PORT:-8080}
	APP_PORTS=${STACK_APP_PORTS:-8001,8002}
	APP_WORKERS=${STACK_APP_WORKERS:-2}
	IFS=, read -r -a PORTS <<<"$APP_PORTS"
	[ "${#PORTS[@]}" -ge 1 ] || die "STACK_APP_PORTS names no port"

	# Production settings (DEBUG off: Secure cookies, HSTS and the HTTPS redirect by default).
	default DEBUG false
	default DATABASE_URL postgres://postgres@127.0.0.1:5432/csam_stack
	default REDIS_URL redis://127.0.0.1:6379/1
	default SITE_URL "https://127.0.0.1:$HTTPS_PORT"
	default ALLOWED_HOSTS 127.0.0.1,localhost
	default CSRF_TRUSTED_ORIGINS "https://127.0.0.1:$HTTPS_PORT"
	default BEHIND_TLS_PROXY true
	default TRUSTED_PROXIES 127.0.0.1
	default TASKS_BACKEND database
	default LOG_FORMAT json
	default PROMETHEUS_MULTIPROC_DIR "$VAR/prometheus" # one set of metrics for every process
	if [ -z "${SECRET_KEY:-}" ]; then
		if [ ! -s "$VAR/secret_key" ]; then
			(umask 077 && openssl rand -base64 48 | tr -d '\n' >"$VAR/secret_key")
		fi
		SECRET_KEY=$(cat "$VAR/secret_key")
		DEFAULTED+=("SECRET_KEY=<from $VAR/secret_key, generated once>")
	fi
	export SECRET_KEY

	TLS_CERT=${STACK_TLS_CERT:-$VAR/tls/stack.crt}
	TLS_KEY=${STACK_TLS_KEY:-$VAR/tls/stack.key}
	if [ -z "${STACK_TLS_CERT:-}" ]; then
		if [ ! -s "$TLS_CERT" ] || [ ! -s "$TLS_KEY" ] \
			|| ! openssl x509 -checkend 86400 -noout -in "$TLS_CERT" >/dev/null 2>&1; then
			(umask 077 && openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
				-days 30 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
				-keyout "$TLS_KEY" -out "$TLS_CERT" >/dev/null 2>&1) || die "openssl could not make the certificate"
		fi
		DEFAULTED+=("TLS certificate=$TLS_CERT (self-signed for 127.0.0.1 and localhost; key $TLS_KEY)")
	fi

}

prepare_database_and_files() {
	say "== database: $("$PY" deploy/ensure_database.py)"
	"$PY" manage.py migrate --no-input --verbosity 0
	"$PY" manage.py compilemessages --ignore .venv --verbosity 0
	"$PY" manage.py collectstatic --no-input --verbosity 0
	"$PY" manage.py check --deploy --fail-level ERROR 2>&1 | sed 's/^/   /'
}

# ADMIN_ALLOWED_NETWORKS (comma-separated addresses or CIDR networks) as the nginx geo block's
# lines: "127.0.0.2/32 1;" each; empty: /admin/ stays open to every address.
admin_networks() {
	local value net
	local -a nets
	IFS=, read -r -a nets <<<"${ADMIN_ALLOWED_NETWORKS:-}"
	for value in "${nets[@]}"; do
		net=$(printf '%s' "$value" | tr -d '[:space:]')
		[ -n "$net" ] || continue
		[[ "$net" =~ ^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$ ]] \
			|| die "ADMIN_ALLOWED_NETWORKS: '$net' is neither an IP address nor a CIDR network"
		printf '        %s 1;\n' "$net"
	done
}

render_nginx() {
	local user_directive="" upstream="" port admin_nets admin_default=1
	admin_nets=$(admin_networks) || exit 1
	[ -z "$admin_nets" ] || admin_default=0
	# As root, nginx's workers drop to an unprivileged user (they touch no file; see the template).
	if [ "$(id -u)" = 0 ]; then
		if id www-data >/dev/null 2>&1; then user_directive="user www-data;"; else user_directive="user nobody;"; fi
	fi
	for port in "${PORTS[@]}"; do
		upstream+="        server 127.0.0.1:$port max_fails=1 fail_timeout=10s;"$'\n'
	done
	mkdir -p "$VAR/nginx/conf"
	awk -v user="$user_directive" -v run="$RUN" -v logdir="$LOG" -v ups="${upstream%$'\n'}" \
		-v admin_default="$admin_default" -v admin_nets="$admin_nets" \
		-v https_port="$HTTPS_PORT" -v cert="$TLS_CERT" -v key="$TLS_KEY" \
		-v https_listen="127.0.0.1:$HTTPS_PORT" -v http_listen="127.0.0.1:$HTTP_PORT" '
		{
			gsub(/@USER_DIRECTIVE@/, user); gsub(/@RUN_DIR@/, run); gsub(/@LOG_DIR@/, logdir)
			gsub(/@HTTPS_PORT@/, https_port); gsub(/@HTTPS_LISTEN@/, https_listen)
			gsub(/@HTTP_LISTEN@/, http_listen); gsub(/@TLS_CERT@/, cert); gsub(/@TLS_KEY@/, key)
			gsub(/@ADMIN_DEFAULT@/, admin_default)
			if ($0 ~ /@UPSTREAM_SERVERS@/) { print ups; next }
			if ($0 ~ /@ADMIN_ALLOWED_NETWORKS@/) { if (admin_nets != "") print admin_nets; next }
			print
		}' deploy/nginx.conf.template >"$VAR/nginx/conf/nginx.conf"
}

# The commands of the processes, exactly as the README quotes them.
start_app() { # start_app NAME PORT
	start_detached "$1" "$LOG/$1.log" \
		"$ROOT/.venv/bin/gunicorn" -c csam_activation/gunicorn.conf.py csam_activation.wsgi \
		--bind "127.0.0.1:$2" --workers "$APP_WORKERS" --forwarded-allow-ips 127.0.0.1 \
		--graceful-timeout 10
}

# django-tasks-db's db_worker, plus taking back the messages a killed worker left half-sent.
start_worker() {
	start_detached worker "$LOG/worker.log" "$PY" manage.py delivery_worker
}

start_nginx() {
	"$NGINX" -p "$VAR/nginx/" -c conf/nginx.conf -e "$LOG/nginx-error.log" -t -q \
		|| die "nginx refused its configuration ($VAR/nginx/conf/nginx.conf)"
	"$NGINX" -p "$VAR/nginx/" -c conf/nginx.conf -e "$LOG/nginx-error.log"
}

cmd_start() {
	load_state
	local running=()
	for name in nginx "${APPS[@]}" worker; do
		pid_of "$name" "$(marker_of "$name")" >/dev/null && running+=("$name")
	done
	if [ "${#running[@]}" -gt 0 ]; then
		say "The stack is already running (${running[*]}); make stack-stop first to restart it."
		cmd_status
		return
	fi
	local began=$SECONDS
	NGINX=$(find_nginx) || { install_nginx && NGINX=$(find_nginx); } || exit 1
	command -v openssl >/dev/null || die "openssl is missing"
	[ -x "$PY" ] || die "$PY is missing: run make install"
	configure
	cat >"$STATE" <<-EOF
		HTTPS_PORT=$HTTPS_PORT
		HTTP_PORT=$HTTP_PORT
		APP_PORTS=$APP_PORTS
	EOF
	trap 'stop_after_failed_start $?' EXIT # whatever fails from here on leaves nothing running
	say "== configuration defaulted for the loopback stack (set them to change them):"
	for line in "${DEFAULTED[@]}"; do say "   $line"; done
	if [ -z "${ADMIN_ALLOWED_NETWORKS:-}" ]; then
		say "   ADMIN_ALLOWED_NETWORKS unset: nginx lets every address reach /admin/"
	fi
	if [ -z "${EMAIL_HOST:-}" ] && [ -z "${MAILER:-}" ]; then
		# A loopback stack: the console is asked for by name (production settings refuse to
		# start without EMAIL_HOST otherwise; check --deploy warns, keys.W002).
		export MAILER=console
		say "   EMAIL_HOST unset: MAILER=console, the worker prints e-mails (activation links included) to $LOG/worker.log"
	fi
	prepare_database_and_files
	render_nginx

	# prometheus-client's multiprocess files: emptied before the processes start, and only then.
	mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
	find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete
	say "== starting: ${#PORTS[@]} gunicorn instances, the worker, nginx"
	local i
	for i in "${!PORTS[@]}"; do start_app "app-$((i + 1))" "${PORTS[$i]}"; done
	APPS=()
	for i in "${!PORTS[@]}"; do APPS+=("app-$((i + 1))"); done
	start_worker
	start_nginx

	local deadline=$((SECONDS + ${STACK_START_TIMEOUT:-40}))
	until all_answer; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			cmd_status || true
			for f in "$LOG"/*.log; do say "--- $f"; tail -n 20 "$f"; done
			say "The stack did not answer within ${STACK_START_TIMEOUT:-40} s; stopping it."
			exit 1
		fi
		sleep 0.3
	done
	trap - EXIT
	cmd_status
	say "Up in $((SECONDS - began)) s: https://127.0.0.1:$HTTPS_PORT/ (logs in $LOG, pid files in $RUN)."
	say "manage.py with the stack's configuration: deploy/stack.sh manage <command>, e.g."
	say "  deploy/stack.sh manage demo_setup     (an office, staff accounts, a demo activation)"
}

stop_after_failed_start() {
	[ "$1" = 0 ] && return
	say "make stack failed; stopping what it started"
	cmd_stop || true
}

# manage.py with the same environment and defaults as the running stack (issue_activation, ...).
cmd_manage() {
	configure >/dev/null
	exec "$PY" manage.py "$@"
}

# ------------------------------------------------------------------------------------ status

# HTTP status of a URL ("000" when nothing answers).
http_code() {
	curl -s -k -o /dev/null --max-time 3 -w '%{http_code}' "$@" 2>/dev/null || true
}

# An app instance answers /healthz with 200 or, without that view, / with a redirect or a page.
# It is asked as nginx asks it (X-Forwarded-Proto: https), else the HTTPS redirect answers.
app_probe() {
	local port=$1 code
	code=$(http_code -H 'X-Forwarded-Proto: https' -H 'Host: 127.0.0.1' "http://127.0.0.1:$port/healthz")
	if [ "$code" = 200 ]; then printf '/healthz %s' "$code"; return 0; fi
	code=$(http_code -H 'X-Forwarded-Proto: https' -H 'Host: 127.0.0.1' "http://127.0.0.1:$port/")
	printf '/ %s' "$code"
	[[ "$code" =~ ^[23] ]]
}

nginx_probe() {
	local https http
	https=$(http_code "https://127.0.0.1:$HTTPS_PORT/healthz")
	[ "$https" = 200 ] || https=$(http_code "https://127.0.0.1:$HTTPS_PORT/")
	http=$(http_code "http://127.0.0.1:$HTTP_PORT/")
	printf 'https %s, http %s' "$https" "$http"
	[[ "$https" =~ ^[23] ]] && [ "$http" = 301 ]
}

# probe NAME: prints what was seen; true when the process answers.
probe() {
	local name=$1 pid
	pid=$(pid_of "$name" "$(marker_of "$name")") || { printf 'not running'; return 1; }
	case "$name" in
	nginx) printf 'pid %-7s ' "$pid"; nginx_probe ;;
	worker) printf 'pid %-7s alive (no HTTP)' "$pid" ;;
	app-*) printf 'pid %-7s ' "$pid"; app_probe "${PORTS[${name#app-} - 1]}" ;;
	esac
}

all_answer() {
	local name
	for name in nginx "${APPS[@]}" worker; do probe "$name" >/dev/null || return 1; done
}

cmd_status() {
	load_state
	local name answering=0 total=0 seen
	for name in nginx "${APPS[@]}" worker; do
		total=$((total + 1))
		if seen=$(probe "$name"); then
			answering=$((answering + 1))
			printf '  %-7s answering      %s\n' "$name" "$seen"
		else
			printf '  %-7s NOT answering  %s\n' "$name" "$seen"
		fi
	done
	say "$answering of $total processes answering (logs: $LOG)"
	[ "$answering" = "$total" ]
}

# -------------------------------------------------------------------------------------- stop

# stop_one NAME: TERM to the process and the rest of its process group (a gunicorn master's
# workers, nginx's workers; also what is left of a group whose leader was killed), wait for all
# of them, KILL what is left after 20 s. Each process was started as the leader of its own
# session, so the pid in its pid file is also its group's id. Only processes whose command line
# is the one we started are signalled (never by name: the marker only guards against a stale
# pid file whose number was reused).
stop_one() {
	local name=$1 marker pgid members waited=0
	case "$name" in
	nginx) marker="nginx:" ;;
	worker) marker="manage.py" ;;
	*) marker="csam_activation.wsgi" ;;
	esac
	pgid=$(tr -dc '0-9' <"$RUN/$name.pid" 2>/dev/null || true)
	members=$([ -z "$pgid" ] || group_members "$pgid" "$marker")
	if [ -z "$members" ]; then
		rm -f "$RUN/$name.pid"
		return 0
	fi
	# shellcheck disable=SC2086
	kill -TERM $members 2>/dev/null || true
	while members=$(group_members "$pgid" "$marker") && [ -n "$members" ]; do
		if [ "$waited" -eq 200 ]; then
			say "  $name: still running after 20 s, killing $members"
			# shellcheck disable=SC2086
			kill -KILL $members 2>/dev/null || true
		fi
		[ "$waited" -le 300 ] || die "$name ($members) did not exit"
		sleep 0.1
		waited=$((waited + 1))
	done
	rm -f "$RUN/$name.pid"
	say "  $name: stopped"
}

cmd_stop() {
	local name file apps=()
	for file in "$RUN"/app-*.pid; do
		[ -e "$file" ] && apps+=("$(basename "$file" .pid)")
	done
	# nginx first, so that no request reaches an instance that is going away; the worker last.
	for name in nginx "${apps[@]}" worker; do stop_one "$name"; done
	rm -f "$STATE"
	say "stack stopped"
}

case "${1:-}" in
start) cmd_start ;;
status) cmd_status ;;
stop) cmd_stop ;;
install-nginx) install_nginx ;;
render-nginx) configure && render_nginx && say "$VAR/nginx/conf/nginx.conf" ;;
manage) shift; cmd_manage "$@" ;;
*) die "usage: $0 start|status|stop|install-nginx|render-nginx|manage ARGS..." ;;
esac
