"""One class on a real JupyterHub, end to end, each step run by the user who would do it.

deploy/hub/setup_hub.sh sets the class up (as root, as CI runs the tests): accounts for an instructor and two
students, the hub's environment, the exchange. The test starts the hub on free local ports (and always stops
it). The instructor releases an assignment; Bob fetches it and submits through his hub server (its REST API),
asks the self-check service twice and is refused a third time; Alice logs in with Chromium and fetches and
submits in the Assignment List; Bob submits his solution; the instructor collects, grades with the trusted
grader as an ordinary user (sandboxed in user namespaces), writes and releases feedback; both fetch their
feedback; the gradebook and the export agree. The accounts, the exchange and the hub's state are removed at the
end; the hub's environment (PREFIX) is kept, since installing it takes a minute.
"""
import csv
import json
import os
import pwd
import re
import secrets
import socket
import stat
import subprocess
import time
from pathlib import Path

import nbformat
import psutil
import pytest
import requests
from nbgrader.api import Gradebook
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM, CHROMIUM_ARGS, stop

from autograder.notebook import solve

REPO = Path(__file__).resolve().parents[1]
PREFIX = Path("/opt/reslab-hub-test")
EXCHANGE = PREFIX / "exchange"
BIN = PREFIX / "venv" / "bin"
TEACHER, ALICE, BOB = "hubtest-teacher", "hubtest-alice", "hubtest-bob"
STAFF = "hubtest-staff"
COURSE_ID, A = "residual-cnns", "a04_identity_add"
CHECKS_PER_HOUR = 2
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates local accounts and runs a JupyterHub as root, "
                                "as CI does: run it as root")


def home(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def course() -> Path:
    return home(TEACHER) / COURSE_ID


def as_user(user: str, *argv: str, cwd: Path | None = None, env: dict | None = None) -> str:
    """Run argv as ``user`` in the hub's environment; its stdout (AssertionError with stderr if it fails)."""
    done = subprocess.run(["runuser", "-u", user, "--", "env", "-i", f"HOME={home(user)}", f"PATH={BIN}:/usr/bin:/bin",
                           "LANG=C.UTF-8", *[f"{k}={v}" for k, v in (env or {}).items()], *argv],
                          cwd=cwd or home(user), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(argv)} as {user} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


def instructor(*argv: str) -> str:
    return as_user(TEACHER, *argv, cwd=course())


def remove_class() -> None:
    """The accounts (their processes first), the exchange and the hub's state: a clean machine."""
    users = [u for u in (TEACHER, ALICE, BOB) if _exists(u)]
    uids = {pwd.getpwnam(u).pw_uid for u in users}
    for proc in psutil.process_iter(["uids"]):
        if proc.info["uids"] and proc.info["uids"].real in uids:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
    psutil.wait_procs([p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real in uids],
                      timeout=10)
    for user in users:
        subprocess.run(["userdel", "--remove", user], capture_output=True, check=True)
    subprocess.run(["groupdel", STAFF], capture_output=True)
    subprocess.run(["rm", "-rf", str(EXCHANGE), str(PREFIX / "state")], check=True)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def free_ports(count: int) -> list[int]:
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Hub:
    """The running hub, driven through its REST API with an admin service token of this test only."""

    def __init__(self, url: str, token: str, log: Path, password: str, selfcheck: str):
        self.url, self.log, self.password, self.selfcheck = url, log, password, selfcheck
        self.admin = self.session(token)
        self.tokens = {}

    @staticmethod
    def session(token: str | None) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxy for 127.0.0.1
        if token:
            session.headers["Authorization"] = f"token {token}"
        return session

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        reply = self.admin.request(method, f"{self.url}/hub/api{path}", timeout=60, **kwargs)
        assert reply.status_code < 300, f"{method} {path}: {reply.status_code} {reply.text[:500]}"
        return reply

    def token(self, user: str) -> str:
        """A token of ``user``, made by the hub's admin API."""
        if user not in self.tokens:
            self.tokens[user] = self.api("POST", f"/users/{user}/tokens", json={"note": "test_hub"}).json()["token"]
        return self.tokens[user]

    def start(self, user: str) -> None:
        if not self.api("GET", f"/users/{user}").json()["servers"].get("", {}).get("ready"):
            self.api("POST", f"/users/{user}/server")
        deadline = time.monotonic() + 120
        while not self.api("GET", f"/users/{user}").json()["servers"].get("", {}).get("ready"):
            assert time.monotonic() < deadline, f"{user}'s server did not start:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.5)

    def server(self, user: str, method: str, path: str, **kwargs) -> requests.Response:
        """A request to the user's own server, with the user's token."""
        return self.session(self.token(user)).request(method, f"{self.url}/user/{user}/{path}", timeout=300,
                                                      **kwargs)

    def nbgrader(self, user: str, action: str) -> dict:
        """What the Assignment List's buttons do: nbgrader's assignment_list server extension."""
        reply = self.server(user, "POST", f"assignments/{action}",
                            params={"course_id": COURSE_ID, "assignment_id": A})
        assert reply.status_code == 200 and reply.json()["success"], reply.text[:2000]
        return reply.json()

    def check(self, user: str) -> requests.Response:
        """A self-check request with the user's token."""
        return self.session(self.token(user)).post(f"{self.selfcheck}check/{A}", timeout=600)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    remove_class()
    ports = free_ports(4)
    started = time.monotonic()
    subprocess.run(["bash", str(REPO / "deploy/hub/setup_hub.sh")], check=True, env={
        **os.environ, "PREFIX": str(PREFIX), "INSTRUCTOR": TEACHER, "STUDENTS": f"{ALICE} {BOB}",
        "STAFF_GROUP": STAFF, "EXCHANGE": str(EXCHANGE), "SELFCHECKS_PER_HOUR": str(CHECKS_PER_HOUR),
        **dict(zip(("PORT", "HUB_PORT", "PROXY_API_PORT", "SELFCHECK_PORT"), map(str, ports)))})
    print(f"setup_hub.sh: {time.monotonic() - started:.1f} s")
    password = secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{ALICE}:{password}\n", text=True, check=True)
    folder = tmp_path_factory.mktemp("hub")
    token = secrets.token_hex(32)
    (folder / "test_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(PREFIX / 'etc/jupyterhub_config.py')!r})\n"
        f"c.JupyterHub.services = c.JupyterHub.services + [{{'name': 'test-admin', 'api_token': {token!r}}}]\n"
        "c.JupyterHub.load_roles = [{'name': 'test-admin', 'services': ['test-admin'], "
        "'scopes': ['admin:users', 'admin:servers', 'tokens']}]\n")
    log = folder / "hub.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(folder / "test_config.py")], cwd=folder,
                                env={"PATH": f"{BIN}:/usr/bin:/bin", "LANG": "C.UTF-8"}, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ports[0]}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"the hub exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the hub did not answer:\n{log.read_text()[-3000:]}"
            try:
                if requests.get(f"{url}/hub/api/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        print(f"hub up after {time.monotonic() - started:.1f} s")
        yield Hub(url, token, log, password, f"http://127.0.0.1:{ports[3]}/services/selfcheck/")
    finally:
        stop(proc, timeout=60)  # the hub stops the servers, the service and the proxy it started
        remove_class()


def test_exchange_and_roles(hub):
    """The exchange has the documented modes; students cannot list submissions or feedback, read the course or
    import the grader; formgrader runs for the instructor only."""
    modes = {path.name: (pwd.getpwuid(path.stat().st_uid).pw_name, stat.filemode(path.stat().st_mode))
             for path in (EXCHANGE, *(EXCHANGE / COURSE_ID / name for name in ("outbound", "inbound", "feedback")))}
    assert modes == {"exchange": ("root", "drwxr-xr-x"), "outbound": (TEACHER, "drwxrwsr-x"),
                     "inbound": (TEACHER, "drwxrws-wt"), "feedback": (TEACHER, "drwxrws--x")}, modes
    probe = ("import os, json, sys\nout = {}\nfor p in sys.argv[1:]:\n    try:\n        out[p] = len(os.listdir(p))\n"
             "    except OSError as e:\n        out[p] = type(e).__name__\ntry:\n    import autograder\n"
             "    out['autograder'] = 'imported'\nexcept ImportError as e:\n    out['autograder'] = type(e).__name__\n"
             "print(json.dumps(out))")
    places = [EXCHANGE / COURSE_ID / "outbound", EXCHANGE / COURSE_ID / "inbound", EXCHANGE / COURSE_ID / "feedback",
              course(), home(BOB)]
    seen = json.loads(as_user(ALICE, "python", "-c", probe, *map(str, places)))
    assert seen == {str(places[0]): 0, str(places[1]): "PermissionError", str(places[2]): "PermissionError",
                    str(places[3]): "PermissionError", str(places[4]): "PermissionError",
                    "autograder": "ModuleNotFoundError"}, seen
    for user in (TEACHER, ALICE, BOB):
        hub.start(user)
    assert hub.server(ALICE, "GET", "formgrader").status_code == 404
    assert hub.server(TEACHER, "GET", "formgrader").status_code == 200
    disabled = {user: json.loads(re.search(r'id="jupyter-config-data" type="application/json">(.*?)</script>',
                                           hub.server(user, "GET", "lab").text, re.S)[1])["disabledExtensions"]
                for user in (ALICE, TEACHER)}
    plugins = {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list"}
    assert plugins <= set(disabled[ALICE]) and not plugins & set(disabled[TEACHER]), disabled


def test_instructor_releases(hub):
    out = instructor("python", "-m", "autograder", "release", A)
    assert re.search(rf"{A}: the solution scores 7/7", out), out
    instructor("nbgrader", "release_assignment", A)
    released = EXCHANGE / COURSE_ID / "outbound" / A / f"{A}.ipynb"
    assert released.stat().st_mode & stat.S_IROTH and "### BEGIN HIDDEN TESTS" not in released.read_text()


def fetched_notebook(hub, user: str) -> nbformat.NotebookNode:
    reply = hub.server(user, "GET", f"api/contents/{A}/{A}.ipynb", params={"content": 1})
    assert reply.status_code == 200, reply.text[:500]
    return nbformat.from_dict(reply.json()["content"])


def save(hub, user: str, nb: nbformat.NotebookNode) -> None:
    reply = hub.server(user, "PUT", f"api/contents/{A}/{A}.ipynb", json={"type": "notebook", "format": "json",
                                                                          "content": nb})
    assert reply.status_code in (200, 201), reply.text[:500]


def solved(release: nbformat.NotebookNode, draft: bool = False) -> nbformat.NotebookNode:
    """The release with the solution's cells; a draft raises with its input's sum in PlainBlock (the message
    shows which inputs the check drew) and applies the ReLU before adding the shortcut in BasicBlock."""
    nb = solve(release, REPO / "solutions" / A / f"{A}.ipynb")
    if draft:
        edits = {"plain_block_solution": ("return F.relu(self.bn2(self.conv2(out)))",
                                          "raise ValueError(f'input sum {float(x.sum()):.6f}')"),
                 "basic_block_solution": ("return F.relu(out + x)", "return F.relu(out) + x")}
        for cell in nb.cells:
            old, new = edits.get(cell.metadata.get("nbgrader", {}).get("grade_id"), ("", ""))
            assert old in cell.source
            cell.source = cell.source.replace(old, new)
    return nb


def test_bob_fetches_and_submits_a_draft(hub):
    listed = hub.server(BOB, "GET", "assignments", params={"course_id": COURSE_ID}).json()["value"]
    assert [(a["assignment_id"], a["status"]) for a in listed] == [(A, "released")]
    hub.nbgrader(BOB, "fetch")
    save(hub, BOB, solved(fetched_notebook(hub, BOB), draft=True))
    hub.nbgrader(BOB, "submit")
    mine = [p for p in (EXCHANGE / COURSE_ID / "inbound").iterdir() if p.name.startswith(f"{BOB}+{A}+")]
    assert len(mine) == 1 and mine[0].stat().st_uid == pwd.getpwnam(BOB).pw_uid


def secret_texts(solutions: bool = True) -> list[str]:
    """Lines that only the instructor's notebook holds: hidden tests (and solution code)."""
    source = nbformat.read(course() / "solutions" / A / f"{A}.ipynb", as_version=4)
    hidden = [line for cell in source.cells for block in HIDDEN.findall(cell.source) for line in block.splitlines()]
    solution = [line.strip() for cell in source.cells if cell.metadata.get("nbgrader", {}).get("solution")
                for line in cell.source.split("### BEGIN SOLUTION", 1)[-1].splitlines()
                if len(line.strip()) > 25 and "###" not in line]
    assert hidden and solution
    return hidden + solution if solutions else hidden


def server_environment(user: str) -> dict:
    """What a terminal of the user's hub server has: the server's own token and the self-check's address."""
    server, = [p for p in psutil.process_iter(["uids", "cmdline"]) if p.info["uids"].real == pwd.getpwnam(user).pw_uid
               and any(part.endswith("jupyterhub-singleuser") for part in p.info["cmdline"] or [])]
    environment = server.environ()
    return {name: environment[name] for name in ("JUPYTERHUB_API_TOKEN", "AUTOGRADER_SELFCHECK_URL")}


def test_selfcheck_twice_then_refused(hub):
    assert hub.session(None).post(f"{hub.selfcheck}check/{A}", timeout=60).status_code in (401, 403)
    nobody = hub.check(ALICE)
    assert nobody.status_code == 404 and "submit it first" in nobody.json()["error"]
    first = as_user(BOB, "python", "-m", "reslab.selfcheck", A, env=server_environment(BOB))  # as in a terminal
    second = hub.check(BOB)
    assert second.status_code == 200, second.text
    answer = second.json()
    assert (answer["score"], answer["max_score"], answer["checks_left"]) == (2, 7, 0), answer
    parts = {p["name"]: p for p in answer["parts"]}
    assert [p["score"] for p in answer["parts"]] == [0, 0, 2], answer
    assert parts["basic_block"]["diagnosis"] == "applies the ReLU before adding the shortcut"
    sums = [re.findall(r"input sum (-?\d+\.\d+)", text) for text in (first, parts["plain_block"]["output"])]
    assert sums[0] and sums[1] and sums[0] != sums[1], sums  # a fresh secret seed for every check
    for text in (first, second.text):
        leaked = [line for line in secret_texts() if line.strip() and line.strip() in text]
        assert not leaked and "seed" not in text.lower(), leaked
    third = hub.check(BOB)
    assert third.status_code == 429 and f"{CHECKS_PER_HOUR} self-checks" in third.json()["error"], third.text
    log = [json.loads(line) for line in (course() / "selfcheck-log.jsonl").read_text().splitlines()]
    assert [(e["student"], e["assignment"], e["score"]) for e in log] == [(BOB, A, 2), (BOB, A, 2)], log


def test_alice_fetches_and_submits_in_the_browser(hub):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{hub.url}/hub/login")
            page.fill("#username_input", ALICE)
            page.fill("#password_input", hub.password)
            page.click("#login_submit")
            page.wait_for_url(f"**/user/{ALICE}/lab**", timeout=120_000)
            page.get_by_role("menuitem", name="Nbgrader").click(timeout=120_000)
            items = page.locator(".lm-Menu-content .lm-Menu-itemLabel")
            expect(items.first).to_have_text("Assignment List")
            assert [t for t in items.all_inner_texts() if t.strip()] == ["Assignment List"]  # no Formgrader
            items.first.click()
            released = page.locator("#released_assignments_list")
            expect(released).to_contain_text(A, timeout=60_000)
            released.get_by_role("button", name="Fetch").click()
            fetched = page.locator("#fetched_assignments_list")
            expect(fetched).to_contain_text(A, timeout=60_000)
            fetched.get_by_role("button", name="Submit").click()
            expect(page.locator("#submitted_assignments_list")).to_contain_text(A, timeout=60_000)
        finally:
            browser.close()
    assert [p for p in (EXCHANGE / COURSE_ID / "inbound").iterdir() if p.name.startswith(f"{ALICE}+{A}+")]


EVIDENCE = """import json, os
def seen(path):
    try:
        return sorted(os.listdir(path))
    except OSError as err:
        return type(err).__name__
print("EVIDENCE " + json.dumps({"uid": os.getuid(), "exchange": seen(%r), "course": seen(%r)}))
"""


def test_bob_submits_his_solution(hub):
    nb = solved(fetched_notebook(hub, BOB))
    nb.cells.append(nbformat.v4.new_code_cell(EVIDENCE % (str(EXCHANGE), str(course()))))
    save(hub, BOB, nb)
    time.sleep(1)  # a later timestamp than the draft's
    hub.nbgrader(BOB, "submit")


def test_instructor_collects_grades_and_releases_feedback(hub):
    instructor("nbgrader", "collect", A)
    out = instructor("python", "-m", "autograder", "grade", A, "--jobs", "2")
    assert f"{ALICE}: 0/7" in out and f"{BOB}: 7/7" in out, out
    graded = nbformat.read(course() / "autograded" / BOB / A / f"{A}.ipynb", as_version=4)
    evidence = [json.loads(line.removeprefix("EVIDENCE ")) for cell in graded.cells for o in cell.get("outputs", [])
                for line in o.get("text", "").splitlines() if line.startswith("EVIDENCE ")]
    # graded as the instructor's own uid, in a user namespace: the exchange is an empty folder, the instructor's
    # home (the course in it) too
    assert evidence == [{"uid": pwd.getpwnam(TEACHER).pw_uid, "exchange": [], "course": "FileNotFoundError"}], evidence
    instructor("python", "-m", "autograder", "feedback", A)
    instructor("nbgrader", "release_feedback", A)
    assert len(list((EXCHANGE / COURSE_ID / "feedback").glob("*.html"))) == 2


def test_students_fetch_their_feedback(hub):
    hub.nbgrader(BOB, "fetch_feedback")
    as_user(ALICE, "nbgrader", "fetch_feedback", A)
    hidden = secret_texts(solutions=False)  # Bob's page shows his notebook, his solution in it
    for student, score in ((BOB, 7), (ALICE, 0)):
        pages = list((home(student) / A / "feedback").glob(f"*/{A}.html"))
        assert len(pages) == 1, pages
        page = pages[0].read_text()
        assert f"{A}: {score} / 7 points ({student})" in page
        assert not [line for line in hidden if line.strip() and line.strip() in page]


def test_gradebook_and_export_agree(hub):
    instructor("python", "-m", "autograder", "export", "--out", "grades.csv")
    with (course() / "grades.csv").open() as f:
        exported = {row["student"]: float(row["score"]) for row in csv.DictReader(f) if row["assignment"] == A}
    with Gradebook(f"sqlite:///{course() / 'gradebook.db'}", COURSE_ID) as gb:
        recorded = {s.student.id: s.score for s in gb.assignment_submissions(A)}
    results = {s: json.loads((course() / "autograded" / s / A / "results.json").read_text())["score"]
               for s in (ALICE, BOB)}
    assert exported == recorded == results == {ALICE: 0, BOB: 7}, (exported, recorded, results)
