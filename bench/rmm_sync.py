"""The RMM sync benchmark: a Kaseya VSA inventory of N agents fetched through the product's connector,
against the floor of fetching and parsing the same pages with httpx and json alone.

    DJANGO_SETTINGS_MODULE=billing.settings .venv/bin/python bench/rmm_sync.py --agents 100000

A fake VSA 9 REST API (the documented shapes of metering/tests/fake_kaseya_vsa.py) serves N agents
in pages of 100 (VSA's cap) from another process on 127.0.0.1, every page serialized beforehand so
the server costs the same little in both measures:

  a. GET every agents page ($top=100, $skip) with one httpx client and json.loads each body: the
     floor (no product code);
  b. KaseyaVsaConnector().fetch_inventory(integration) on the same server: the login (and a new one
     every 25,000 records, as VSAModule does), organizations, views and the agents of each view,
     then every agents page, each agent checked with the rmm-assets rules into an AgentRow.

Each is run --repeat times, alternately; the best time of each is kept. With --sync (a migrated
database in DATABASE_URL, PostgreSQL for figures that mean anything), the whole sync as the nightly
job runs it, `metering.sync.inventory_sync`, on a partner with 50 customers (one per VSA organization)
and a per_asset service each, inside a transaction rolled back at the end:

  c1. the partner's first sync: fetch, which agents count, 100,000 agents and presences written, the
      units before and after, the agents of no customer, the run recorded;
  c2. the next night's sync of the same inventory (nothing changes): what every night costs.

Prints a table with the times and the ratios over the floor a against the target (TARGET_RATIO).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if os.environ.get("DJANGO_SETTINGS_MODULE", "billing.settings") == "billing.settings":
    # billing/settings/ is a package whose __init__ holds no settings: the project's are its base module
    # (what manage.py and the other benches use; production.py and test.py extend it)
    os.environ["DJANGO_SETTINGS_MODULE"] = "billing.settings.base"

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402

from metering.connectors import KaseyaVsaConnector  # noqa: E402
from metering.models import RmmIntegration  # noqa: E402
from metering.tests.fake_kaseya_vsa import OK, vsa_agent, vsa_org, vsa_view  # noqa: E402

TARGET_RATIO = 2.0
PAGE = 100
USER, PAT = "bench", "0b1d6a52-8a4f-4c6e-9d27-5d1f3f7f1e11"
ORGS = 50
VIEW_MEMBERS = 100  # agents in the one view (one page of agentsinview)


def dataset(agents: int) -> dict[str, bytes]:
    """Every answer of the fake VSA, serialized: path with query -> body."""
    orgs = [vsa_org(f"org{n:03}", f"Organization {n:03}") for n in range(ORGS)]
    groups = ["root", "workstations", "lab.workstations", "servers"]
    records = [vsa_agent(orgs[n % ORGS], groups[n % len(groups)], f"PC-{n:06}", agent_id=10**14 + n,
                         online=(0, 1, 11, 198, 199)[n % 5] if n % 97 == 0 else 1)
               for n in range(agents)]
    view = vsa_view("Billed servers", view_id=4242)
    bodies = {
        "/api/v1.0/system/orgs?$top=100&$skip=0": {"TotalRecords": ORGS, "Result": orgs, **OK},
        "/api/v1.0/system/views?$top=100&$skip=0": {"TotalRecords": 1, "Result": [view], **OK},
        "/api/v1.0/assetmgmt/agentsinview/4242?$top=100&$skip=0": {
            "TotalRecords": min(VIEW_MEMBERS, agents), "Result": records[:VIEW_MEMBERS], **OK},
    }
    for skip in range(0, max(agents, 1), PAGE):
        bodies[f"/api/v1.0/assetmgmt/agents?$top=100&$skip={skip}"] = {
            "TotalRecords": agents, "Result": records[skip:skip + PAGE], **OK}
    return {path: json.dumps(body).encode() for path, body in bodies.items()}


def serve(agents: int, ready) -> None:
    """The fake VSA (run in its own process: the server's work is not timed against the client's GIL)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    bodies = dataset(agents)
    login = json.dumps({"Result": {"TenantId": "1", "Token": "90151280", "UserName": USER, "RoleId": 2,
                                   "ScopeId": "2", "AdminId": 1, "MachineId": None, "MachineGroupName": None,
                                   "SessionExpiration": "2099-01-01T00:00:00.000", "CultureInfo": "en-US",
                                   "TimePref": "Browser", "OffSetInMinutes": 0, "ApiToken": "x",
                                   "Attributes": None}, **OK}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stalls)

        def log_message(self, format, *args):
            pass

        def do_GET(self):
            if self.path == "/api/v1.0/auth":
                status, body = 200, login
            elif self.headers.get("Authorization") != "Bearer 90151280":
                status, body = 401, b'{"ResponseCode": 401}'
            else:
                body = bodies.get(self.path)
                status, body = (200, body) if body is not None else (404, b'{"ResponseCode": 404}')
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.send(server.server_address[1])
    server.serve_forever()


def floor(url: str, agents: int) -> int:
    """a: every agents page fetched and parsed, nothing else."""
    rows = []
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        for skip in range(0, agents, PAGE):
            response = client.get(f"{url}/api/v1.0/assetmgmt/agents?$top=100&$skip={skip}",
                                  headers={"Authorization": "Bearer 90151280", "Accept": "application/json"})
            response.raise_for_status()
            rows += json.loads(response.content)["Result"]
    return len(rows)


def connector(url: str, agents: int) -> int:
    """b: the product's connector on the same server."""
    integration = RmmIntegration(kind="kaseya-vsa", base_url=url, username=USER, api_token=PAT)
    pages = -(-agents // PAGE) + 10
    return len(KaseyaVsaConnector(timeout=30, max_pages=pages).fetch_inventory(integration))


def whole_syncs(url: str, agents: int) -> tuple[float, float]:
    """c1 and c2: two nightly syncs of a new partner (as of yesterday, then today), rolled back."""
    from datetime import date, timedelta

    from django.db import transaction
    from djmoney.money import Money

    from billing.core.actor import Actor
    from metering.models import SyncStatus
    from metering.sync import inventory_sync
    from partners.models import Customer, Method, Partner, Service

    class Done(Exception):
        pass

    today = date.today()
    times = []
    try:
        with transaction.atomic():
            partner = Partner.objects.create(slug="bench-rmm-sync", name="Bench RMM sync")
            for n in range(ORGS):
                customer = Customer.objects.create(partner=partner, slug=f"c{n:03}", name=f"Customer {n:03}",
                                                   rmm_organization=f"org{n:03}")
                Service.objects.create(partner=partner, customer=customer, code=f"agents-{n:03}", name="Agents",
                                       method=Method.PER_ASSET, unit_price=Money("5.00", "USD"),
                                       start_date=today - timedelta(days=60))
            RmmIntegration.objects.create(partner=partner, kind="kaseya-vsa", base_url=url, username=USER,
                                          api_token=PAT)
            for as_of in (today - timedelta(days=1), today):
                began = time.perf_counter()
                run = inventory_sync(partner=partner, as_of=as_of, actor=Actor(label="bench"), trigger="nightly")
                times.append(time.perf_counter() - began)
                if run.status != SyncStatus.OK:
                    raise SystemExit(f"the sync as of {as_of} is {run.status}: {run.error}")
            raise Done
    except Done:
        pass
    return times[0], times[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one connector run")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--sync", action="store_true",
                        help="also time whole syncs (inventory_sync) on the database of DATABASE_URL")
    args = parser.parse_args(argv)

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    server = context.Process(target=serve, args=(args.agents, send), daemon=True)
    began = time.perf_counter()
    server.start()
    url = f"http://127.0.0.1:{receive.recv()}"
    print(f"fake VSA with {args.agents} agents ({-(-args.agents // PAGE)} pages) ready in "
          f"{time.perf_counter() - began:.1f} s at {url}", flush=True)
    try:
        times = {"a": [], "b": []}
        for _ in range(args.repeat):
            for key, fn in (("a", floor), ("b", connector)):
                began = time.perf_counter()
                count = fn(url, args.agents)
                times[key].append(time.perf_counter() - began)
                if count != args.agents:
                    raise SystemExit(f"{key}: {count} agents, expected {args.agents}")
        if args.sync:
            from django.db import connection

            for _ in range(args.repeat):
                first, nightly = whole_syncs(url, args.agents)
                times.setdefault("c1", []).append(first)
                times.setdefault("c2", []).append(nightly)
            database = connection.vendor
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(connector, url, args.agents)
            pstats.Stats(profile).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(25)
    finally:
        server.terminate()
        server.join(5)

    a, b = min(times["a"]), min(times["b"])
    ratio = b / a if a else float("inf")
    rows = [("a", f"httpx + json: {args.agents} agents, {-(-args.agents // PAGE)} pages (floor)", f"{a:.2f} s", ""),
            ("b", "KaseyaVsaConnector().fetch_inventory (login, orgs, views, agents)", f"{b:.2f} s", ""),
            ("b/a", "connector over the floor", f"{ratio:.2f}",
             f"<= {TARGET_RATIO:g}  " + ("ok" if ratio <= TARGET_RATIO else "MISSED"))]
    results_sync = {}
    if args.sync:
        c1, c2 = min(times["c1"]), min(times["c2"])
        rows += [("c1", "inventory_sync, the partner's first (every agent written)", f"{c1:.2f} s", ""),
                 ("c1/a", "first sync over the floor", f"{c1 / a:.2f}", "(reported)"),
                 ("c2", "inventory_sync, the next night (nothing changed)", f"{c2:.2f} s", ""),
                 ("c2/a", "nightly sync over the floor", f"{c2 / a:.2f}",
                  f"<= {TARGET_RATIO:g}  " + ("ok" if c2 / a <= TARGET_RATIO else "MISSED"))]
        results_sync = {"c1": round(c1, 3), "c2": round(c2, 3), "c1_ratio": round(c1 / a, 3),
                        "c2_ratio": round(c2 / a, 3), "database": database}
    print(f"\n{'':<5} {'measure':<66} {'value':>8}  target\n" + "-" * 96)
    for key, label, value, target in rows:
        print(f"{key:<5} {label:<66} {value:>8}  {target}")
    print(f"\n(best of {args.repeat}; a: {', '.join(f'{t:.2f}' for t in times['a'])} s; "
          f"b: {', '.join(f'{t:.2f}' for t in times['b'])} s"
          + "".join(f"; {k}: {', '.join(f'{t:.2f}' for t in times[k])} s" for k in ("c1", "c2") if k in times)
          + f"; {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()})")
    results = {"agents": args.agents, "a": round(a, 3), "b": round(b, 3), "ratio": round(ratio, 3),
               "target_ratio": TARGET_RATIO, "runs": {k: [round(t, 3) for t in v] for k, v in times.items()},
               **results_sync}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
