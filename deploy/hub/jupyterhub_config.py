"""JupyterHub for one class (filled in by setup_hub.sh). Local system users with PAM: fine for one machine;
in production use your institution's login (e.g. oauthenticator's GenericOAuthenticator or ltiauthenticator)
with the same user names as the local accounts."""
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:@PORT@"
c.JupyterHub.db_url = "sqlite:///@PREFIX@/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "@PREFIX@/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.command = ["@PREFIX@/proxy/node_modules/.bin/configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = "@PREFIX@/proxy.pid"
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {"@INSTRUCTOR@", *"@STUDENTS@".split()}
c.Authenticator.admin_users = {"@INSTRUCTOR@"}
c.Spawner.cmd = ["@PREFIX@/venv/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {"PATH": "@PREFIX@/venv/bin:/usr/bin:/bin"}
