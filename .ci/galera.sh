#!/usr/bin/env bash
# A 3-node MariaDB Galera cluster on loopback, for the cluster tests (tests/test_galera.py).
#
#   .ci/galera.sh start    install galera-4/rsync if missing, start 3 nodes, wait until
#                          wsrep_cluster_size = 3 and every node is Synced (idempotent)
#   .ci/galera.sh stop     stop the nodes by their pid files (idempotent)
#   .ci/galera.sh status   print each node's size and state
#   .ci/galera.sh urls     print the nodes' SQLAlchemy URLs, comma separated
#
# Node N listens for SQL on 127.0.0.1:331N, group communication on 1456N, IST on 1457N and
# SST (rsync) on 1458N. Everything lives under $GALERA_DIR (default /tmp/activerecord-galera):
# datadirs, sockets, pid files, logs. The servers run with --no-defaults, so the MariaDB on
# 3306 (its config, datadir and socket) is never read or touched.
set -euo pipefail

DIR=${GALERA_DIR:-/tmp/activerecord-galera}
NODES=(1 2 3)
PROVIDER=${GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}
TIMEOUT=${GALERA_TIMEOUT:-90}
DATABASE=${GALERA_DATABASE:-test}
GCOMM="gcomm://127.0.0.1:14561,127.0.0.1:14562,127.0.0.1:14563"

sql_port() { echo $((3310 + $1)); }
client() {  # node, sql...
  mariadb --no-defaults --protocol=socket -S "$DIR/node$1/mysqld.sock" -u root -N -B \
    --connect-timeout=2 -e "$2" 2>/dev/null
}
pid_of() {
  local f="$DIR/node$1/mysqld.pid"
  [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}
state() {  # node -> "size state" or nothing
  client "$1" "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
      WHERE VARIABLE_NAME='wsrep_cluster_size'), (SELECT VARIABLE_VALUE FROM
      information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='wsrep_local_state_comment')" \
    | tr '\t' ' '
}
synced() { [[ $(state "$1") == "3 Synced" ]]; }

install_packages() {
  if [[ -e $PROVIDER ]] && command -v rsync >/dev/null; then return; fi
  echo "galera: installing galera-4 and rsync" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq galera-4 rsync >/dev/null
}

start_node() {  # node, extra options...
  local n=$1; shift
  local d="$DIR/node$n"
  if pid_of "$n" >/dev/null; then return; fi
  mkdir -p "$d/data" "$d/tmp"
  # As the mysql user, as packaged servers run: the SST's rsync daemon, started by the node,
  # drops root to "nobody" and could not write the datadir.
  chown -R mysql:mysql "$d"
  if [[ ! -d $d/data/mysql ]]; then
    # Joiners get their data by SST; the bootstrap node needs a system database first.
    if [[ $n == 1 ]]; then
      mariadb-install-db --no-defaults --datadir="$d/data" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve --user=mysql >"$d/install.log" 2>&1
    fi
  fi
  # Setsid: the node outlives this script (and a CI step's process group) until `stop`.
  setsid /usr/sbin/mariadbd --no-defaults --user=mysql \
    --datadir="$d/data" --tmpdir="$d/tmp" --socket="$d/mysqld.sock" --pid-file="$d/mysqld.pid" \
    --log-error="$d/error.log" --port="$(sql_port "$n")" --bind-address=127.0.0.1 \
    --skip-name-resolve --local-infile=1 --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_general_ci --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
    --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 --performance-schema=OFF \
    --binlog-format=ROW --default-storage-engine=InnoDB --innodb-autoinc-lock-mode=2 \
    --wsrep-on=ON --wsrep-provider="$PROVIDER" --wsrep-cluster-name=activerecord-ci \
    --wsrep-cluster-address="$GCOMM" --wsrep-node-name="node$n" \
    --wsrep-node-address="127.0.0.1:$((14560 + n))" \
    --wsrep-node-incoming-address="127.0.0.1:$(sql_port "$n")" \
    --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$((14560 + n));ist.recv_addr=127.0.0.1:$((14570 + n));gcache.size=64M;evs.suspect_timeout=PT5S;evs.inactive_timeout=PT10S;evs.install_timeout=PT10S;pc.wait_prim_timeout=PT10S" \
    --wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:$((14580 + n))" \
    "$@" </dev/null >>"$d/stdout.log" 2>&1 &
}

wait_until() {  # seconds, description, command...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "galera: timed out waiting for $what" >&2
      for n in "${NODES[@]}"; do
        echo "--- node$n error.log (tail)" >&2
        tail -n 20 "$DIR/node$n/error.log" >&2 2>/dev/null || true
      done
      return 1
    fi
    sleep 0.5
  done
}

all_synced() { for n in "${NODES[@]}"; do synced "$n" || return 1; done; }
primary() { [[ $(state 1) == *Synced ]]; }

start() {
  install_packages
  mkdir -p "$DIR"
  if all_synced; then echo "galera: already running"; return; fi
  local begin=$SECONDS
  if ! pid_of 1 >/dev/null && ! pid_of 2 >/dev/null && ! pid_of 3 >/dev/null; then
    # Nobody is up: node 1 bootstraps a new cluster (its state is safe to bootstrap from,
    # as this cluster only ever holds test data).
    if [[ -f $DIR/node1/data/grastate.dat ]]; then
      sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$DIR/node1/data/grastate.dat"
    fi
    # The joiners take a full state transfer from node 1 (rsync of a small datadir, a second
    # or two): an incremental one from a gcache left by an earlier run can fail and would
    # leave a node out.
    rm -rf "$DIR/node2/data" "$DIR/node3/data"
    start_node 1 --wsrep-new-cluster
    wait_until "$TIMEOUT" "node 1 to bootstrap" primary
    client 1 "CREATE DATABASE IF NOT EXISTS \`$DATABASE\` CHARACTER SET utf8mb4;
      CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
      GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
  fi
  for n in 2 3; do start_node "$n"; done
  wait_until "$TIMEOUT" "3 Synced nodes" all_synced
  echo "galera: 3 nodes Synced in $((SECONDS - begin)) s"
}

stop() {
  local pids=()
  for n in "${NODES[@]}"; do
    local pid
    if pid=$(pid_of "$n"); then kill "$pid"; pids+=("$pid"); fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  done
  echo "galera: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) for n in "${NODES[@]}"; do echo "node$n $(state "$n" || true)"; done ;;
  urls)
    urls=()
    for n in "${NODES[@]}"; do urls+=("mysql+pymysql://root@127.0.0.1:$(sql_port "$n")/$DATABASE"); done
    (IFS=,; echo "${urls[*]}")
    ;;
  *) echo "usage: $0 start|stop|status|urls" >&2; exit 2 ;;
esac
