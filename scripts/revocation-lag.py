#!/usr/bin/env python3
"""Revocation lag across two wardend nodes on one PostgreSQL, idle and under a 4-client write
load: a binding deleted through node A, then node B's /check polled until it denies."""
import json, os, subprocess, sys, threading, time, urllib.request, urllib.error, uuid, base64, statistics

BIN = os.environ.get("BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release"))
DB = "warden_revoke_" + uuid.uuid4().hex[:8]
PG = "postgres://postgres@127.0.0.1:5432"
subprocess.run(["psql", "-d", PG + "/postgres", "-qc", f"CREATE DATABASE {DB}"], check=True)
work = f"/tmp/{DB}"; os.makedirs(work)
def env(port, n):
    e = dict(os.environ, WARDEN_DATABASE__URL=f"{PG}/{DB}", WARDEN_SERVER__LISTEN=f"127.0.0.1:{port}",
             WARDEN_SERVER__CONTROL_SOCKET=f"{work}/{n}.sock", WARDEN_LOG="warn", WARDEN_CONFIG_DIR=f"{work}/cli{n}",
             WARDEN_SERVER=f"http://127.0.0.1:{port}", WARDEN_AUTH__ARGON2__MEMORY_KIB="1024", WARDEN_AUTH__ARGON2__ITERATIONS="1")
    return e
procs = []
for port, n in ((18181, "a"), (18182, "b")):
    procs.append(subprocess.Popen([f"{BIN}/wardend", "serve"], env=env(port, n), stderr=open(f"{work}/{n}.log", "w")))
def wait(port):
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"); return
        except Exception: time.sleep(0.1)
    raise SystemExit("no server")
wait(18181); wait(18182)
A, B = "http://127.0.0.1:18181", "http://127.0.0.1:18182"
def call(base, method, path, body=None, auth=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json", **({"authorization": auth} if auth else {})})
    try:
        with urllib.request.urlopen(req) as r: return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e: return e.code, json.loads(e.read() or b"null")
def basic(user, pw): return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
e = env(18181, "a")
pw = subprocess.run([f"{BIN}/wardend", "recover-account", "idm_admin"], env=e, capture_output=True, text=True, check=True).stdout.strip()
idm = basic("idm_admin", pw)
assert call(A, "POST", "/api/v1/users", {"name": "root", "password": "correct horse battery"}, idm)[0] == 201
subprocess.run([f"{BIN}/wardend", "superuser", "add", "root"], env=e, capture_output=True, check=True)
root = basic("root", "correct horse battery")
call(A, "POST", "/api/v1/users", {"name": "bob"}, root)
assert call(A, "POST", "/api/v1/roles", {"id": "operator", "name": "Operator", "permissions": ["deploy:run"]}, root)[0] == 201
# A token for the load and the checks (a password per request would measure argon2).
call(A, "POST", "/api/v1/service-accounts", {"name": "loader"}, root)
call(A, "POST", "/api/v1/groups/idm_superusers/members", {"members": ["sa:loader"]}, root)
st, tok = call(A, "POST", "/api/v1/service-accounts/loader/tokens", {"read_write": True}, root)
assert st == 201, tok
bearer = "Bearer " + tok["token"]
stop = threading.Event(); written = [0]
def load(k):
    i = 0
    while not stop.is_set():
        i += 1
        if call(A, "POST", "/api/v1/users", {"name": f"load-{k}-{i}"}, bearer)[0] == 201: written[0] += 1
def lag_once():
    st, b = call(A, "POST", "/api/v1/bindings", {"role": "operator", "subject": "user:bob"}, bearer)
    assert st == 201, b
    check = {"subject": "user:bob", "permission": "deploy:run"}
    while not call(B, "POST", "/api/v1/check", check, bearer)[1]["results"][0]["allowed"]: pass
    call(A, "DELETE", f"/api/v1/bindings/{b['id']}", None, bearer)
    t = time.perf_counter()
    while call(B, "POST", "/api/v1/check", check, bearer)[1]["results"][0]["allowed"]: pass
    return (time.perf_counter() - t) * 1000
def run(label, rounds):
    lags = sorted(lag_once() for _ in range(rounds))
    print(f"{label}: n={len(lags)} p50={statistics.median(lags):.1f} ms p99={lags[int(0.99 * (len(lags) - 1))]:.1f} ms max={lags[-1]:.1f} ms")
try:
    run("idle", 40)
    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads: t.start()
    t0 = time.perf_counter(); time.sleep(1)
    run("under 4-client user creation on node A", 40)
    stop.set(); [t.join() for t in threads]
    print(f"load: {written[0] / (time.perf_counter() - t0):.0f} users/s through node A meanwhile")
finally:
    for p in procs: p.terminate(); p.wait()
    subprocess.run(["psql", "-d", PG + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"])
