#!/usr/bin/env bash
# One class on a JupyterHub (Linux, run as root): a Python environment every user can execute, JupyterHub
# with configurable-http-proxy, local accounts for the instructor and the students, nbgrader's exchange with
# narrow permissions, formgrader for the instructor only. Safe to run again. Start the hub with
#   $PREFIX/venv/bin/jupyterhub -f $PREFIX/jupyterhub_config.py
# Settings (environment): PREFIX, INSTRUCTOR, STUDENTS (space-separated), EXCHANGE, COURSE_GROUP, PORT.
# STATUS: draft, not yet working. Debian's /usr/bin/python3 is 3.11.2, and requirements.lock pins packages
# that need 3.11.5+ (soupsieve 4.1.2 first), so step 1 fails; the pyenv interpreter cannot be copied out of
# /root (its libpython is found through an rpath under /root). Next: a hub lock resolved for 3.11.2, or a
# Python installed outside /root. Steps 2-6 have not been run.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PREFIX=${PREFIX:-/opt/reslab-hub}
INSTRUCTOR=${INSTRUCTOR:-instructor}
STUDENTS=${STUDENTS:-}
EXCHANGE=${EXCHANGE:-/srv/nbgrader/exchange}
COURSE_GROUP=${COURSE_GROUP:-residual-cnns}
PORT=${PORT:-8000}
COURSE_ID=residual-cnns
[ "$(id -u)" = 0 ] || { echo "setup_hub: run as root (it creates users and spawns their servers)" >&2; exit 1; }

# 1. Python for everyone: pyenv's interpreter under /root cannot be executed by other users, Debian's can.
mkdir -p "$PREFIX"
pip_install() { "$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2); }
if [ ! -x "$PREFIX/venv/bin/jupyterhub" ]; then
  /usr/bin/python3 -m venv "$PREFIX/venv"
  pip_install -r "$REPO/requirements.lock" -r "$REPO/deploy/hub/requirements-hub.txt"
fi
pip_install --no-deps --force-reinstall "$REPO"
npm ci --prefix "$REPO/deploy/hub" --silent --no-audit --no-fund
rm -rf "$PREFIX/proxy" && cp -r "$REPO/deploy/hub/node_modules" "$PREFIX/proxy"
chmod -R a+rX "$PREFIX"

# 2. Accounts: the course group holds the instructor and the students (it alone may enter the exchange).
getent group "$COURSE_GROUP" >/dev/null || groupadd "$COURSE_GROUP"
for user in "$INSTRUCTOR" $STUDENTS; do
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
  usermod -a -G "$COURSE_GROUP" "$user"
done

# 3. The exchange: root-owned, entered only by the course group; the instructor owns the course's folder.
mkdir -p "$EXCHANGE/$COURSE_ID"
chown root:"$COURSE_GROUP" "$EXCHANGE" && chmod 0750 "$EXCHANGE"
chown "$INSTRUCTOR":"$COURSE_GROUP" "$EXCHANGE/$COURSE_ID" && chmod 0755 "$EXCHANGE/$COURSE_ID"

# 4. The instructor's course directory: the sources and the grader's settings, private to the instructor.
COURSE=$(getent passwd "$INSTRUCTOR" | cut -d: -f6)/$COURSE_ID
mkdir -p "$COURSE/autograder"
cp "$REPO/nbgrader_config.py" "$COURSE/"
cp "$REPO/autograder/nbgrader_config.py" "$COURSE/autograder/"
cp -r "$REPO/solutions" "$COURSE/"
chown -R "$INSTRUCTOR": "$COURSE" && chmod 0700 "$COURSE"

# 5. nbgrader for everyone (exchange, course id); formgrader and create-assignment only for the instructor.
mkdir -p "$PREFIX/venv/etc/jupyter"
cat > "$PREFIX/venv/etc/jupyter/nbgrader_config.py" <<PY
c = get_config()
c.CourseDirectory.course_id = "$COURSE_ID"
c.Exchange.root = "$EXCHANGE"
PY
J="$PREFIX/venv/bin/jupyter"
"$J" server extension disable --sys-prefix nbgrader.server_extensions.formgrader >/dev/null
for ext in formgrader create-assignment course-list; do
  "$J" labextension disable --level=sys_prefix "@jupyter/nbgrader:$ext" >/dev/null
done
runuser -u "$INSTRUCTOR" -- bash -c "cd ~ && '$J' server extension enable --user nbgrader.server_extensions.formgrader \
  && for ext in formgrader create-assignment course-list; do '$J' labextension enable --level=user @jupyter/nbgrader:\$ext; done \
  && printf 'c = get_config()\nc.CourseDirectory.root = \"%s\"\n' '$COURSE' > ~/.jupyter/nbgrader_config.py" >/dev/null

# 6. The hub's configuration.
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@INSTRUCTOR@|$INSTRUCTOR|g" -e "s|@STUDENTS@|$STUDENTS|g" \
    -e "s|@PORT@|$PORT|g" "$REPO/deploy/hub/jupyterhub_config.py" > "$PREFIX/jupyterhub_config.py"
echo "setup_hub: done. Start: $PREFIX/venv/bin/jupyterhub -f $PREFIX/jupyterhub_config.py (port $PORT)"
