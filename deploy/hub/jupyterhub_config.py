"""JupyterHub for one class; deploy/hub/setup_hub.sh copies this file and writes hub.json (its settings) next to it.

Logins are local system accounts through PAM: fine on one machine. In production use your institution's
login instead, e.g. ``oauthenticator``'s GenericOAuthenticator (or ltiauthenticator from the LMS), mapped to
the same local user names (LocalAuthenticator's ``create_system_users`` can make the accounts). No hub admin
is configured: an admin can act as any student through their server.
"""
import json
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub provides it)
settings = json.loads(Path(__file__).with_name("hub.json").read_text())
prefix, state = settings["prefix"], f"{settings['prefix']}/state"
instructors = set(settings["instructors"])
venv_path = f"{prefix}/venv/bin:/usr/local/bin:/usr/bin:/bin"
selfcheck = f"http://127.0.0.1:{settings['selfcheck_port']}"

c.JupyterHub.bind_url = settings["bind_url"]  # behind a TLS-terminating reverse proxy in production
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{settings['hub_port']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [f"{prefix}/proxy/node_modules/.bin/configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = f"{state}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{state}/jupyterhub.pid"

c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = instructors | set(settings["students"])

c.Spawner.cmd = [f"{prefix}/venv/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = c.Spawner.start_timeout = 120  # JupyterLab starts slowly on a small, busy machine
c.Spawner.environment = {"PATH": venv_path, "AUTOGRADER_SELFCHECK_URL": f"{selfcheck}/services/selfcheck/"}
# the server's own token ($JUPYTERHUB_API_TOKEN) may also call the self-check service, so that
# `python -m autograder selfcheck ASSIGNMENT` works in a terminal
c.Spawner.server_token_scopes = ["users:activity!user", "access:services!service=selfcheck"]


def by_role(spawner):
    """Instructors' servers read a config folder of their own (formgrader, Create Assignment, Course List) and
    import the grader from their course folder (nbgrader's course settings name its classes)."""
    if spawner.user.name in instructors:
        spawner.environment["JUPYTER_CONFIG_PATH"] = f"{prefix}/etc/jupyter-instructor"
        spawner.environment["PYTHONPATH"] = settings["course"]


c.Spawner.pre_spawn_hook = by_role

# The trusted self-check (autograder/selfcheck.py), run by the hub as the instructor, in the course folder.
c.JupyterHub.services = [{
    "name": "selfcheck", "url": selfcheck, "user": settings["instructors"][0], "cwd": settings["course"],
    "command": [f"{prefix}/venv/bin/python", "-m", "autograder", "--course-dir", settings["course"],
                "selfcheck-service"],
    "environment": {"PATH": venv_path}, "display": False,
}]
c.JupyterHub.extra_user_scopes = {"access:services!service=selfcheck"}
