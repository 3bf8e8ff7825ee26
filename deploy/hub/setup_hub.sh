#!/usr/bin/env bash
# One class on a JupyterHub, on one Linux machine. Run as root; safe to run again (in the instructor's course
# folder it replaces only autograder/). What it sets up, and why each mode is what it is: deploy/hub/README.md.
#   INSTRUCTOR=ada STUDENTS="alan grace" bash deploy/hub/setup_hub.sh
#   /opt/reslab/venv/bin/jupyterhub -f /opt/reslab/etc/jupyterhub_config.py
# Settings (environment): PREFIX, PYTHON, INSTRUCTOR, STUDENTS (space-separated), STAFF_GROUP, EXCHANGE,
# PORT (the hub's public port on 127.0.0.1; BIND_URL for another address), HUB_PORT, PROXY_API_PORT,
# SELFCHECK_PORT (internal, on 127.0.0.1), SELFCHECKS_PER_HOUR.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/deploy/hub
PREFIX=${PREFIX:-/opt/reslab}
PYTHON=${PYTHON:-/usr/bin/python3}
INSTRUCTOR=${INSTRUCTOR:-instructor}
STUDENTS=${STUDENTS:-}
EXCHANGE=${EXCHANGE:-/srv/nbgrader/exchange}
PORT=${PORT:-8000}
BIND_URL=${BIND_URL:-http://127.0.0.1:$PORT}
HUB_PORT=${HUB_PORT:-8081}
PROXY_API_PORT=${PROXY_API_PORT:-8001}
SELFCHECK_PORT=${SELFCHECK_PORT:-8002}
SELFCHECKS_PER_HOUR=${SELFCHECKS_PER_HOUR:-3}
VENV=$PREFIX/venv
say() { echo "setup_hub: $*"; }
die() { echo "setup_hub: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run this as root: it creates accounts, and the hub it configures starts servers as them"
for tool in runuser useradd groupadd npm node bwrap; do
  command -v "$tool" >/dev/null || die "$tool is missing (Debian/Ubuntu: apt-get install passwd bubblewrap nodejs npm)"
done
node -e 'process.exit(Number(process.versions.node.split(".")[0] < 20))' \
  || die "configurable-http-proxy 5 needs Node.js 20 or newer (found $(node --version))"
for user in "$INSTRUCTOR" $STUDENTS; do  # nbgrader splits submission names at "+"; useradd's own rules
  [[ $user =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "not a valid user name: '$user' (lowercase letters, digits, _ and -)"
done
# Every user runs this Python (their servers, kernels, the grader): an interpreter under /root (pyenv's) will
# not do. Debian's /usr/bin/python3 (3.11.2, with python3-venv) does.
runuser -u nobody -- "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || die "$PYTHON must be Python 3.11+ with venv and ensurepip, runnable by every user (set PYTHON=...)"

# 1. The environment of everyone: the project's lock plus the hub's, and the reslab library (a copy: the users
#    need not read this checkout). Reinstalled only when a lock changed. The grader is not installed here,
#    where every student could read its answer key: it runs from the instructor's course folder (step 4).
mkdir -p "$PREFIX/etc" "$PREFIX/state" && chmod 0755 "$PREFIX" "$PREFIX/etc" && chmod 0700 "$PREFIX/state"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip_install() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2); }
stamp=$(cat "$REPO/requirements.lock" "$HERE/requirements-hub.lock" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.locks" 2>/dev/null)" != "$stamp" ]; then
  say "installing requirements.lock and requirements-hub.lock into $VENV"
  pip_install -r "$REPO/requirements.lock" -r "$HERE/requirements-hub.lock"
  echo "$stamp" > "$VENV/.locks"
fi
# the student bundle (python -m autograder.bundle: library, chapters, released exercises, no solution), which
# also installs the library; its chapters go to each student's home in step 2
rm -rf "$PREFIX/bundle" && (cd "$REPO" && "$VENV/bin/python" -m autograder.bundle "$PREFIX/bundle" >/dev/null)
chmod -R a+rX,go-w "$PREFIX/bundle"
pip_install --no-deps --force-reinstall "$PREFIX/bundle"
if ! cmp -s "$HERE/package-lock.json" "$PREFIX/proxy/package-lock.json"; then
  rm -rf "$PREFIX/proxy" && mkdir -p "$PREFIX/proxy"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$PREFIX/proxy/"
  npm ci --prefix "$PREFIX/proxy" --silent --no-audit --no-fund --omit=dev
fi
chmod -R a+rX,go-w "$VENV" "$PREFIX/proxy"
COURSE_ID=$(cd "$REPO" && "$VENV/bin/python" -c "from autograder.course import Course; print(Course().coursedir.course_id)")
STAFF_GROUP=${STAFF_GROUP:-$COURSE_ID-staff}

# 2. Accounts. The staff group holds the instructor (add teaching assistants to it): it may read the exchange's
#    inbound and feedback folders. Students are not in it. New homes are private (0700).
getent group "$STAFF_GROUP" >/dev/null || groupadd "$STAFF_GROUP"
for user in "$INSTRUCTOR" $STUDENTS; do
  if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user"
    chmod 0700 "$(getent passwd "$user" | cut -d: -f6)"
  fi
done
usermod -a -G "$STAFF_GROUP" "$INSTRUCTOR"
for user in $STUDENTS; do  # the chapters, once (a student's edits are theirs); exercises come by the exchange
  home=$(getent passwd "$user" | cut -d: -f6)
  [ -e "$home/course" ] || { cp -r "$PREFIX/bundle/course" "$home/course" && chown -R "$user:$user" "$home/course"; }
done
HOME_DIR=$(getent passwd "$INSTRUCTOR" | cut -d: -f6)
COURSE=$HOME_DIR/$COURSE_ID

# 3. nbgrader's exchange, with the modes nbgrader's groupshared mode would give each folder, made here so that
#    they never depend on someone's umask. Nobody but root may create anything at the top.
#    outbound: the instructor writes, everyone reads; inbound: everyone may add a folder (sticky: nobody renames
#    or deletes one of another), only staff may list;
#    feedback: only staff may list, students open their own file by its secret name.
mkdir -p "$(dirname "$EXCHANGE")" && install -d -o root -g root -m 0755 "$EXCHANGE"
install -d -o "$INSTRUCTOR" -g "$STAFF_GROUP" -m 2775 "$EXCHANGE/$COURSE_ID" "$EXCHANGE/$COURSE_ID/outbound"
install -d -o "$INSTRUCTOR" -g "$STAFF_GROUP" -m 3773 "$EXCHANGE/$COURSE_ID/inbound"
install -d -o "$INSTRUCTOR" -g "$STAFF_GROUP" -m 2771 "$EXCHANGE/$COURSE_ID/feedback"

# 4. The instructor's course folder, private (0700): the sources with hidden tests (solutions/), the grader with
#    its answer key (autograder/, replaced on every run: put your own settings in nbgrader_config.py, after the
#    lines this script writes), later the gradebook, submissions and feedback. The rest is made once.
if [ ! -e "$COURSE" ]; then
  install -d -o "$INSTRUCTOR" -g "$INSTRUCTOR" -m 0700 "$COURSE"
  cp -r "$REPO/solutions" "$COURSE/"
  { cat "$REPO/nbgrader_config.py"
    printf '\n# This hub (deploy/hub/setup_hub.sh): the exchange (also hidden from sandboxes), the self-check limit\n'
    printf 'c.Exchange.root = "%s"\nc.Autograder.selfchecks_per_hour = %s\n' "$EXCHANGE" "$SELFCHECKS_PER_HOUR"
  } > "$COURSE/nbgrader_config.py"
fi
rm -rf "$COURSE/autograder" && cp -r "$REPO/autograder" "$COURSE/autograder"
find "$COURSE/autograder" -name __pycache__ -prune -exec rm -rf {} +
chown -R "$INSTRUCTOR:$INSTRUCTOR" "$COURSE"

# 5. Jupyter for everyone (students' defaults): the exchange of this course, groupshared (so nbgrader does not
#    demand a world-writable exchange root), the Assignment List and Validate; no formgrader, no Create
#    Assignment, no Course List. Instructors get those from a config folder of their own (JUPYTER_CONFIG_PATH,
#    set by the hub's config for them).
cat > "$VENV/etc/jupyter/nbgrader_config.py" <<PY
c = get_config()  # noqa: F821 (written by deploy/hub/setup_hub.sh)
c.Exchange.root = "$EXCHANGE"
c.CourseDirectory.course_id = "$COURSE_ID"
c.CourseDirectory.groupshared = True
PY
INSTRUCTOR_CONFIG=$PREFIX/etc/jupyter-instructor
rm -rf "$INSTRUCTOR_CONFIG" "$VENV/etc/jupyter/labconfig"
mkdir -p "$INSTRUCTOR_CONFIG/labconfig" "$INSTRUCTOR_CONFIG/jupyter_server_config.d" "$VENV/etc/jupyter/labconfig"
roles() {  # config folder, server extensions on (true/false), lab plugins disabled (true/false)
  printf '{"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": %s,
  "nbgrader.server_extensions.course_list": %s}}}\n' "$2" "$2" > "$1/jupyter_server_config.d/reslab-roles.json"
  printf '{"disabledExtensions": {"@jupyter/nbgrader:formgrader": %s, "@jupyter/nbgrader:create-assignment": %s,
  "@jupyter/nbgrader:course-list": %s}}\n' "$3" "$3" "$3" > "$1/labconfig/page_config.json"
}
roles "$VENV/etc/jupyter" false true        # students: the server extensions off, the lab plugins disabled
roles "$INSTRUCTOR_CONFIG" true false       # instructors: on, and enabled
cat > "$INSTRUCTOR_CONFIG/nbgrader_config.py" <<'PY'
import os

c = get_config()  # noqa: F821 (written by deploy/hub/setup_hub.sh): formgrader opens the instructor's course
load_subconfig(os.path.expanduser("~/@COURSE_ID@/nbgrader_config.py"))  # noqa: F821
PY
sed -i "s|@COURSE_ID@|$COURSE_ID|" "$INSTRUCTOR_CONFIG/nbgrader_config.py"
# no news or update checks from JupyterLab: a class machine need not reach the internet
mkdir -p "$VENV/share/jupyter/lab/settings"
echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
  > "$VENV/share/jupyter/lab/settings/overrides.json"
chmod -R a+rX "$INSTRUCTOR_CONFIG" "$VENV/etc" "$VENV/share/jupyter/lab/settings"

# 6. The hub: a fixed config reading its settings from hub.json.
cp "$HERE/jupyterhub_config.py" "$PREFIX/etc/jupyterhub_config.py"
"$VENV/bin/python" - "$PREFIX/etc/hub.json" <<PY
import json, sys
json.dump(dict(prefix="$PREFIX", bind_url="$BIND_URL", hub_port=$HUB_PORT, proxy_api_port=$PROXY_API_PORT,
               selfcheck_port=$SELFCHECK_PORT, instructors=["$INSTRUCTOR"], students="$STUDENTS".split(),
               course="$COURSE"), open(sys.argv[1], "w"), indent=1)
PY
say "done: start the hub with $VENV/bin/jupyterhub -f $PREFIX/etc/jupyterhub_config.py (serves $BIND_URL)"
