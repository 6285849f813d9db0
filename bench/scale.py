#!/usr/bin/env python3
"""tagsmith at monorepo scale, and with large build contexts.

    python3 bench/scale.py [--dir DIR] [--runs 5] [--only NAME ...] [--plot docs/scaling.png]

Parts (all by default; --only picks some):
  statcache  the 20 x 2,500-file tree: an unchanged second run and a one-file change
             against `git status`; cold hashing (--no-stat-cache) against b3sum.
  files      time against number of files (1k -> 200k), cold and warm, peak RSS.
  services   time against number of services (10 -> 1,000), peak RSS.
  noop       `build --push` with every tag present: 1,000 services against 50.
  rev        `tags --rev` of 100 consecutive commits against one commit.
  big        build contexts with a 2 GiB file: x1 and x4 under --jobs 4 against an
             empty context (anonymous memory, RssAnon) and `docker build`; `tags`
             resident and anonymous memory on big files.
Prints Markdown tables for the README and, with matplotlib, draws the scaling curve.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench  # noqa: E402  (the 20 x 2,500 generator)

TAGSMITH = os.path.join(ROOT, "target", "release", "tagsmith")


def run(cmd, cwd, env=None, stdin=None, check=True):
    """Wall time, peak RSS and peak RssAnon (MiB) of one run.

    Peak RSS is GNU time's %M (the child's ru_maxrss): wait4 from this
    process would report at least Python's own RSS, which Linux carries
    into a child's maxrss across fork and exec. RssAnon is sampled from /proc.
    """
    full_env = dict(os.environ, **(env or {}))
    with tempfile.NamedTemporaryFile(prefix="tagsmith-bench-rss-") as rss_file:
        timed = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *cmd]
        start = time.perf_counter()
        p = subprocess.Popen(timed, cwd=cwd, env=full_env, stdin=stdin or subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = {"anon": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                for pid in children(p.pid) + [c for k in children(p.pid) for c in children(k)]:
                    try:
                        with open(f"/proc/{pid}/status") as f:
                            for line in f:
                                if line.startswith("RssAnon:"):
                                    peak["anon"] = max(peak["anon"], int(line.split()[1]))
                    except OSError:
                        pass
                time.sleep(0.02)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        err = p.stderr.read()
        p.wait()
        elapsed = time.perf_counter() - start
        done.set()
        t.join()
        try:
            rss = int(open(rss_file.name).read().split()[-1])
        except (OSError, ValueError, IndexError):
            rss = 0
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
    return elapsed, rss / 1024, peak["anon"] / 1024


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def median(cmd, cwd, runs, env=None, before=None):
    times, rss, anon = [], 0.0, 0.0
    for _ in range(runs):
        if before:
            before()
        t, r, a = run(cmd, cwd, env)
        times.append(t)
        rss, anon = max(rss, r), max(anon, a)
    return statistics.median(times), rss, anon


def table(title, rows):
    print(f"\n#### {title}\n")
    print("| what | time | peak RSS | peak RssAnon |")
    print("|---|---|---|---|")
    for what, t, rss, anon in rows:
        ts = t if isinstance(t, str) else f"{t:.3f} s"
        print(f"| {what} | {ts} | {rss} | {anon} |")


def mib(x):
    return f"{x:.1f} MiB" if x else ""


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "-c", "commit.gpgsign=false", *args],
                   cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def part_statcache(base, runs):
    tree = os.path.join(base, "mono")
    bench.generate(tree, 20, 2500)
    if not os.path.isdir(os.path.join(tree, ".git")):
        git(tree, "init", "-q")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", "bench")
    cache = tempfile.mkdtemp(prefix="tagsmith-bench-cache-")
    env = {"TAGSMITH_CACHE_DIR": cache}
    files = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(tree, "services")) for f in fs]
    listing = os.path.join(base, "mono.files")
    with open(listing, "wb") as f:
        f.write(b"\0".join(p.encode() for p in files))
    # Warm the page cache, and age the files past the racy window.
    run([TAGSMITH, "tags", "--no-stat-cache"], tree, env)
    time.sleep(2.5)
    run([TAGSMITH, "tags"], tree, env)
    run(["git", "status", "--porcelain"], tree)
    t_git, _, _ = median(["git", "status", "--porcelain"], tree, runs)
    t_warm, rss_warm, anon_warm = median([TAGSMITH, "tags"], tree, runs, env)
    victim = os.path.join(tree, "services", "svc07", "pkg10", "f0500.dat")
    counter = [0]

    def touch_one():
        counter[0] += 1
        with open(victim, "ab") as f:
            f.write(b"x")
    t_one, _, _ = median([TAGSMITH, "tags"], tree, runs, env, before=touch_one)
    t_cold, rss_cold, anon_cold = median([TAGSMITH, "tags", "--no-stat-cache"], tree, runs, env)
    t_b3 = statistics.median([timed_stdin(["xargs", "-0", "b3sum"], tree, listing) for _ in range(runs)])
    total = sum(os.path.getsize(p) for p in files)
    rows = [
        (f"`git status` on the tree ({len(files)} files, {total / 1e6:.0f} MB)", t_git, "", ""),
        ("`tagsmith tags`, unchanged tree, stat cache warm", t_warm, mib(rss_warm), mib(anon_warm)),
        ("ratio to `git status` (target <= 1.5x)", f"{t_warm / t_git:.2f}x", "", ""),
        ("`tagsmith tags`, one file changed", t_one, "", ""),
        ("ratio to the unchanged run (target <= 1.10x)", f"{t_one / t_warm:.2f}x", "", ""),
        ("`tagsmith tags --no-stat-cache` (cold: every file hashed)", t_cold, mib(rss_cold), mib(anon_cold)),
        ("`xargs -0 b3sum` over the same files", t_b3, "", ""),
        ("ratio (target <= 0.8x)", f"{t_cold / t_b3:.2f}x", "", ""),
    ]
    table("Stat cache: 20 services x 2,500 files, page cache warm, median of %d" % runs, rows)
    shutil.rmtree(cache, ignore_errors=True)
    return {"git": t_git, "warm": t_warm, "one": t_one, "cold": t_cold, "b3": t_b3}


def timed_stdin(cmd, cwd, path):
    with open(path, "rb") as stdin:
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, stdin=stdin, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start


def tree_of(base, files, per_service=2500, size=4096):
    """`files` files of `size` bytes in services of `per_service` files."""
    d = os.path.join(base, f"files-{files}")
    marker = os.path.join(d, ".done")
    if os.path.exists(marker):
        return d
    shutil.rmtree(d, ignore_errors=True)
    rng = random.Random(files)
    blob = rng.randbytes(1 << 20)
    services = max(1, files // per_service)
    cfg = ["registry: bench.example.com/scale", "services:"]
    n = 0
    for s in range(services):
        ctx = os.path.join(d, "services", f"s{s:03d}")
        count = files // services
        for i in range(count):
            sub = os.path.join(ctx, f"p{i // 100:03d}")
            os.makedirs(sub, exist_ok=True)
            off = rng.randrange(0, len(blob) - size)
            with open(os.path.join(sub, f"f{i:05d}"), "wb") as f:
                f.write(blob[off:off + size])
            n += 1
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY . /\n")
        cfg += [f"  s{s:03d}:", f"    context: services/s{s:03d}"]
    with open(os.path.join(d, "tagsmith.yaml"), "w") as f:
        f.write("\n".join(cfg) + "\n")
    open(marker, "w").close()
    return d


def part_files(base, runs):
    points = []
    rows = []
    for n in (1_000, 5_000, 20_000, 50_000, 100_000, 200_000):
        d = tree_of(base, n)
        cache = tempfile.mkdtemp(prefix="tagsmith-bench-cache-")
        env = {"TAGSMITH_CACHE_DIR": cache}
        run([TAGSMITH, "tags", "--no-stat-cache"], d, env)
        time.sleep(2.5)
        cold, rss_c, anon_c = median([TAGSMITH, "tags", "--no-stat-cache"], d, runs, env)
        run([TAGSMITH, "tags"], d, env)
        warm, rss_w, anon_w = median([TAGSMITH, "tags"], d, runs, env)
        points.append((n, cold, warm))
        rows.append((f"{n:,} files: cold / warm", f"{cold:.3f} s / {warm:.3f} s", mib(max(rss_c, rss_w)), mib(max(anon_c, anon_w))))
        shutil.rmtree(cache, ignore_errors=True)
    table(f"Time against number of files (4 KiB each, 2,500 per service), median of {runs}", rows)
    return points


def services_tree(base, count, files=20):
    d = os.path.join(base, f"services-{count}")
    marker = os.path.join(d, ".done")
    if os.path.exists(marker):
        return d
    shutil.rmtree(d, ignore_errors=True)
    rng = random.Random(count)
    cfg = ["registry: 127.0.0.1:REGISTRY/scale", "services:"]
    for s in range(count):
        ctx = os.path.join(d, "svc", f"s{s:04d}")
        os.makedirs(ctx)
        deps = sorted({rng.randrange(s) for _ in range(rng.randrange(3))}) if s else []
        lines = []
        for dep in deps:
            arg = f"S{dep:04d}_IMAGE"
            lines += [f"ARG {arg}", f"FROM ${{{arg}}} AS d{dep}"]
        lines += ["FROM scratch", "COPY . /"]
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("\n".join(lines) + "\n")
        for i in range(files):
            with open(os.path.join(ctx, f"f{i:02d}"), "w") as f:
                f.write(f"{s}/{i}\n")
        cfg += [f"  s{s:04d}:", f"    context: svc/s{s:04d}"]
    with open(os.path.join(d, "tagsmith.yaml"), "w") as f:
        f.write("\n".join(cfg) + "\n")
    open(marker, "w").close()
    return d


def part_services(base, runs):
    points, rows = [], []
    for n in (10, 50, 100, 250, 500, 1000):
        d = services_tree(base, n)
        cache = tempfile.mkdtemp(prefix="tagsmith-bench-cache-")
        env = {"TAGSMITH_CACHE_DIR": cache}
        run([TAGSMITH, "tags"], d, env)
        t, rss, anon = median([TAGSMITH, "tags"], d, runs, env)
        g, _, _ = median([TAGSMITH, "graph"], d, runs, env)
        points.append((n, t))
        rows.append((f"{n} services x 20 files: `tags` / `graph`", f"{t:.3f} s / {g:.3f} s", mib(rss), mib(anon)))
        shutil.rmtree(cache, ignore_errors=True)
    table(f"Time against number of services (random DAG), median of {runs}", rows)
    return points


def start_registry(base):
    """bench.py's registry, with storage in a temporary directory of its own."""
    data = tempfile.mkdtemp(prefix="tagsmith-bench-registry-")
    proc, port = bench.start_registry(base, data)
    return proc, port, data


def put_image(port, repo, tag):
    """Puts a one-layer image under repo:tag through the registry API."""
    import hashlib
    base = f"http://127.0.0.1:{port}/v2/{repo}"
    layer = b"bench"
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    for blob in (layer, config):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        req = urllib.request.Request(f"{base}/blobs/uploads/", method="POST")
        loc = urllib.request.urlopen(req).headers["Location"]
        sep = "&" if "?" in loc else "?"
        url = loc if loc.startswith("http") else f"http://127.0.0.1:{port}{loc}"
        urllib.request.urlopen(urllib.request.Request(f"{url}{sep}digest={digest}", data=blob, method="PUT",
                                                      headers={"Content-Type": "application/octet-stream"}))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest()}]}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{base}/manifests/{tag}", data=manifest, method="PUT",
                                                  headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}))


def part_noop(base, runs):
    proc, port, data = start_registry(base)
    rows = []
    try:
        results = {}
        for n in (50, 1000):
            d = services_tree(base, n)
            cfg = os.path.join(d, "tagsmith.yaml")
            with open(cfg) as f:
                text = f.read()
            with open(os.path.join(d, "push.yaml"), "w") as f:
                f.write(text.replace("REGISTRY", str(port)))
            out = subprocess.run([TAGSMITH, "--config", "push.yaml", "tags", "--format", "json"], cwd=d,
                                 capture_output=True, check=True).stdout
            for s in json.loads(out)["services"]:
                put_image(port, f"scale/{s['name']}", s["tag"])
            t, rss, anon = median([TAGSMITH, "--config", "push.yaml", "build", "--push", "--quiet"], d, runs)
            results[n] = t
            rows.append((f"`build --push`, all {n} services present (no-op)", t, mib(rss), mib(anon)))
        rows.append(("ratio 1,000 / 50 (target <= 20x)", f"{results[1000] / results[50]:.1f}x", "", ""))
    finally:
        proc.kill()
        shutil.rmtree(data, ignore_errors=True)
    table(f"The no-op CI run: every tag in a local registry, median of {runs}", rows)
    return rows


def part_rev(base, runs):
    tree = os.path.join(base, "mono")
    bench.generate(tree, 20, 2500)
    hist = os.path.join(base, "mono-history")
    if not os.path.isdir(os.path.join(hist, ".git")):
        shutil.rmtree(hist, ignore_errors=True)
        shutil.copytree(tree, hist)
        git(hist, "init", "-q")
        git(hist, "add", "-A")
        git(hist, "commit", "-q", "-m", "c0")
        rng = random.Random(7)
        for i in range(1, 100):
            s, p, f = rng.randrange(20), rng.randrange(50), rng.randrange(2500)
            path = os.path.join(hist, "services", f"svc{s:02d}", f"pkg{f // 50:02d}", f"f{f:04d}.dat")
            with open(path, "ab") as fh:
                fh.write(f"change {i}\n".encode())
            git(hist, "commit", "-q", "-am", f"c{i}")
    # Each timed as one shell command: the harness's own cost per process
    # (Python, GNU time, sampling) would otherwise be counted 100 times.
    loop = f"for i in $(seq 0 99); do {TAGSMITH} tags --rev HEAD~$i >/dev/null; done"
    one = []
    many = []
    # Page cache warm: one untimed run reads every object once.
    cache = tempfile.mkdtemp(prefix="tagsmith-bench-cache-")
    run([TAGSMITH, "tags", "--rev", "HEAD"], hist, {"TAGSMITH_CACHE_DIR": cache})
    shutil.rmtree(cache)
    for _ in range(runs):
        cache = tempfile.mkdtemp(prefix="tagsmith-bench-cache-")
        env = {"TAGSMITH_CACHE_DIR": cache}
        t, _, _ = run(["sh", "-c", f"{TAGSMITH} tags --rev HEAD >/dev/null"], hist, env)
        one.append(t)
        shutil.rmtree(cache)
        cache = tempfile.mkdtemp(prefix="tagsmith-bench-cache-")
        env = {"TAGSMITH_CACHE_DIR": cache}
        t, _, _ = run(["sh", "-c", loop], hist, env)
        many.append(t)
        shutil.rmtree(cache)
    t1, t100 = statistics.median(one), statistics.median(many)
    # One process over the same 100 commits: what `cleanup --keep-last 100`
    # does, with an empty local registry (nothing to delete).
    proc, port, data = start_registry(base)
    try:
        with open(os.path.join(hist, "tagsmith.yaml")) as f:
            text = f.read()
        with open(os.path.join(hist, "local.yaml"), "w") as f:
            f.write(text.replace("bench.example.com/bench", f"127.0.0.1:{port}/bench"))
        inproc = []
        for _ in range(runs):
            cache = tempfile.mkdtemp(prefix="tagsmith-bench-cache-")
            t, _, _ = run([TAGSMITH, "--config", "local.yaml", "cleanup", "--keep-last", "100", "--dry-run"],
                          hist, {"TAGSMITH_CACHE_DIR": cache})
            inproc.append(t)
            shutil.rmtree(cache)
    finally:
        proc.kill()
        shutil.rmtree(data, ignore_errors=True)
    t_in = statistics.median(inproc)
    table(f"`--rev`: tags from git objects, blob digests reused (kept in the cache directory), median of {runs}", [
        ("`tags --rev HEAD` (one commit, 50,000 files, empty cache)", t1, "", ""),
        ("`tags --rev HEAD~i` for i = 0..99 (100 processes)", t100, "", ""),
        ("ratio (target <= 10x)", f"{t100 / t1:.1f}x", "", ""),
        ("`cleanup --keep-last 100 --dry-run` (the 100 commits in one process, empty cache)", t_in, "", ""),
        ("ratio to one commit", f"{t_in / t1:.1f}x", "", ""),
    ])


def part_big(base, runs):
    big = os.path.join(base, "big")
    os.makedirs(big, exist_ok=True)
    model = os.path.join(big, "model.bin")
    if not os.path.exists(model) or os.path.getsize(model) != 2 << 30:
        with open("/dev/urandom", "rb") as src, open(model, "wb") as dst:
            for _ in range(2048):
                dst.write(src.read(1 << 20))
    cfg = ["registry: localhost/tagsmith-bench-big", "services:"]
    for s in range(4):
        ctx = os.path.join(big, f"s{s}")
        os.makedirs(ctx, exist_ok=True)
        target = os.path.join(ctx, "model.bin")
        if not os.path.exists(target):
            if s == 0:
                os.link(model, target)
            else:
                shutil.copyfile(model, target)  # distinct inodes: four files to send
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY model.bin /model.bin\n")
        cfg += [f"  s{s}:", f"    context: s{s}"]
    empty = os.path.join(big, "empty")
    os.makedirs(empty, exist_ok=True)
    with open(os.path.join(empty, "Dockerfile"), "w") as f:
        f.write("FROM scratch\nCOPY Dockerfile /x\n")
    cfg += ["  empty:", "    context: empty"]
    with open(os.path.join(big, "tagsmith.yaml"), "w") as f:
        f.write("\n".join(cfg) + "\n")
    env = {"TAGSMITH_CACHE_DIR": tempfile.mkdtemp(prefix="tagsmith-bench-cache-")}

    def forget():
        """Each build leaves 2 GiB images and build cache: drop them first."""
        out = subprocess.run(["docker", "images", "-q", "--filter", "reference=localhost/tagsmith-bench-big/*",
                              "--filter", "reference=tagsmith-bench-big/*"], capture_output=True, text=True).stdout
        ids = sorted(set(out.split()))
        if ids:
            subprocess.run(["docker", "rmi", "-f", *ids], capture_output=True)
        subprocess.run(["docker", "image", "prune", "-f"], capture_output=True)
        subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True)
    rows = []
    # Every run finds the contexts hashed (stat cache warm), as a CI rerun would.
    run([TAGSMITH, "tags"], big, env)
    for builder in ("buildkit", "classic"):
        build = [TAGSMITH, "build", "--force", "--no-cache", "--quiet", "--builder", builder]
        t_e, _, a_e = median(build + ["empty"], big, runs, env, before=forget)
        t_1, r_1, a_1 = median(build + ["s0"], big, runs, env, before=forget)
        t_4, r_4, a_4 = median(build + ["--jobs", "4", "s0", "s1", "s2", "s3"], big, max(1, runs // 2), env,
                               before=forget)
        kit = "1" if builder == "buildkit" else "0"
        docker = ["sh", "-c", f"DOCKER_BUILDKIT={kit} /usr/bin/docker build -q --no-cache -t tagsmith-bench-big/docker s0 >/dev/null"]
        t_d, r_d, a_d = median(docker, big, runs, before=forget)
        rows += [
            (f"{builder}: empty context", t_e, "", mib(a_e)),
            (f"{builder}: one 2 GiB file", t_1, mib(r_1), mib(a_1)),
            (f"{builder}: four 2 GiB files, --jobs 4", t_4, mib(r_4), mib(a_4)),
            (f"{builder}: anonymous memory above the empty build (target <= 64 MB)", f"{a_1 - a_e:.1f} / {a_4 - a_e:.1f} MiB", "", ""),
            (f"`docker build` ({builder}) of the one-file context", t_d, mib(r_d), mib(a_d)),
            (f"{builder}: ratio to `docker build` (target <= 1.1x)", f"{t_1 / t_d:.2f}x", "", ""),
        ]
    t, r, a = median([TAGSMITH, "tags", "--no-stat-cache", "s0"], big, runs, env)
    rows.append(("`tags --no-stat-cache` of the 2 GiB context (read in 64 KiB pieces, not mapped: RSS is its own)", t, mib(r), mib(a)))
    table(f"Large build contexts (2 GiB of random bytes), median of {runs}", rows)
    forget()


def plot(path, files, services):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing (pip install matplotlib): no plot", file=sys.stderr)
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    if files:
        n = [p[0] for p in files]
        a.plot(n, [p[1] for p in files], "o-", label="cold (every file hashed)")
        a.plot(n, [p[2] for p in files], "s-", label="warm (stat cache, unchanged tree)")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("files (4 KiB each)")
        a.set_ylabel("`tagsmith tags` seconds")
        a.set_title("Time against files")
        a.grid(True, which="both", alpha=0.3)
        a.legend()
    if services:
        b.plot([p[0] for p in services], [p[1] for p in services], "o-", color="C2")
        b.set_xscale("log")
        b.set_xlabel("services (20 files each, random DAG)")
        b.set_ylabel("`tagsmith tags` seconds (stat cache warm)")
        b.set_title("Time against services")
        b.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"tagsmith on {os.cpu_count()} cores, page cache warm")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nplot written to {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/tagsmith-bench")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=["statcache", "files", "services", "noop", "rev", "big"])
    ap.add_argument("--plot", default=os.path.join(ROOT, "docs", "scaling.png"))
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    os.makedirs(args.dir, exist_ok=True)
    files = services = None
    if "statcache" in args.only:
        part_statcache(args.dir, args.runs)
    if "files" in args.only:
        files = part_files(args.dir, args.runs)
    if "services" in args.only:
        services = part_services(args.dir, args.runs)
    if "noop" in args.only:
        part_noop(args.dir, args.runs)
    if "rev" in args.only:
        part_rev(args.dir, args.runs)
    if "big" in args.only:
        part_big(args.dir, args.runs)
    if files or services:
        plot(args.plot, files, services)


if __name__ == "__main__":
    main()
