#!/usr/bin/env python3
"""tagsmith benchmark: generates a synthetic monorepo and times tagsmith against
reference tools on the same files, page cache warm, in one run.

    python3 bench/bench.py [--dir DIR] [--services 20] [--files 2500] [--runs 5]

Measures `tagsmith tags` against `b3sum` over the same file list (target: ratio
<= 1.0, peak RSS <= 64 MB), and rendering 1,000 templates (~10 MB) against hashing
the services they reference (target: <= 10%). With a Docker engine and
`docker-registry` present (skip with --no-build) it also measures, against a
local registry: `tagsmith build --push` with all 20 services present vs
`docker build` of the same 20 with a warm layer cache (target: <= 5%), and one
real (uncached) build through tagsmith vs `docker build --no-cache` of the same
Dockerfile (target: <= 1.1x). Prints a Markdown table for the README.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate(base, services, files, seed=42):
    """services x files files of 200 B - 64 KB (skewed small: mean ~16 KB)."""
    marker = os.path.join(base, f".generated-{services}x{files}-{seed}")
    if os.path.exists(marker):
        return
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    rng = random.Random(seed)
    blob = rng.randbytes(1 << 20) * 2  # slices of a random 2 MiB buffer: fast, distinct enough
    cfg = ["registry: bench.example.com/bench", "services:"]
    for s in range(services):
        name = f"svc{s:02d}"
        ctx = os.path.join(base, "services", name)
        for i in range(files):
            d = os.path.join(ctx, f"pkg{i // 50:02d}")
            os.makedirs(d, exist_ok=True)
            size = 200 + int((64 * 1024 - 200) * rng.random() ** 3)
            off = rng.randrange(0, len(blob) - size)
            with open(os.path.join(d, f"f{i:04d}.dat"), "wb") as f:
                f.write(blob[off:off + size])
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY . /app\n")
        cfg += [f"  {name}:", f"    context: services/{name}"]
    with open(os.path.join(base, "tagsmith.yaml"), "w") as f:
        f.write("\n".join(cfg) + "\n")
    open(marker, "w").close()


def generate_templates(base, services, count=1000, size=10_000):
    """`count` manifests of about `size` bytes, each referencing a few services,
    plus render-only.yaml: the same service names over tiny contexts, so that
    rendering with it costs (almost) nothing but the rendering."""
    tdir = os.path.join(base, "templates")
    if not os.path.isdir(tdir):
        os.makedirs(tdir)
        filler = "    # {{ $labels.instance }} <<: *defaults cat <<EOF x << y\n"
        for i in range(count):
            svc = [f"svc{(i + k) % services:02d}" for k in range(3)]
            head = (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{i}\n"
                    f"spec:\n  image: << image \"{svc[0]}\" >>\n  tag: << tag \"{svc[1]}\" >>\n"
                    f"  repo: << repository \"{svc[2]}\" >>\n")
            body = filler * ((size - len(head)) // len(filler))
            with open(os.path.join(tdir, f"m{i:04d}.yaml"), "w") as f:
                f.write(head + body)
    tiny = os.path.join(base, "tiny")
    os.makedirs(tiny, exist_ok=True)
    with open(os.path.join(tiny, "Dockerfile"), "w") as f:
        f.write("FROM scratch\n")
    cfg = ["registry: bench.example.com/bench", "services:"]
    for s in range(services):
        cfg += [f"  svc{s:02d}:", "    context: tiny"]
    with open(os.path.join(base, "render-only.yaml"), "w") as f:
        f.write("\n".join(cfg) + "\n")
    total = sum(os.path.getsize(os.path.join(tdir, n)) for n in os.listdir(tdir))
    return count, total


def measure(cmd, runs, cwd, stdin_path=None):
    """Median wall time (s) and peak RSS (MiB, by GNU time) over `runs` runs."""
    times, rss = [], 0.0
    rss_file = os.path.join(cwd, ".rss")
    for _ in range(runs):
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        start = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd,
                           cwd=cwd, stdin=stdin, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        if p.returncode != 0:
            sys.exit(f"{cmd[0]} failed with status {p.returncode}")
        with open(rss_file) as f:
            rss = max(rss, int(f.read().split()[-1]) / 1024)
    return statistics.median(times), rss


def start_registry(base, data=None):
    """A docker-registry on a free loopback port; storage in `data`, else under `base`."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = os.path.join(base, "registry.yml")
    with open(conf, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                f"    rootdirectory: {data or os.path.join(base, 'registry-data')}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    sys.exit("docker-registry did not start")


def bench_build(base, tagsmith, runs, services):
    rows = []
    proc, port = start_registry(base)
    try:
        with open(os.path.join(base, "tagsmith.yaml")) as f:
            cfg = f.read().replace("bench.example.com/bench", f"127.0.0.1:{port}/bench")
        with open(os.path.join(base, "build.yaml"), "w") as f:
            f.write(cfg)
        ts = [tagsmith, "--config", "build.yaml", "build", "--quiet"]
        t_first, _ = measure(ts + ["--push"], 1, base)
        rows.append((f"first `tagsmith build --push` ({services} services, nothing in the registry)", t_first, ""))
        t_check, rss = measure(ts + ["--push"], runs, base)
        docker_all = ["sh", "-c", "for s in services/*; do DOCKER_BUILDKIT=0 docker build -q "
                      "-t bench-docker/$(basename $s) $s >/dev/null 2>&1 || exit 1; done"]
        measure(docker_all, 1, base)
        t_docker_all, _ = measure(docker_all, runs, base)
        rows.append((f"`tagsmith build --push`, all {services} present", t_check, f"{rss:.1f} MiB"))
        rows.append((f"`docker build` of the same {services}, warm layer cache", t_docker_all, ""))
        rows.append(("ratio (target <= 5%)", t_check / t_docker_all, "%"))
        # One real build each way, on the same builder: the classic one (a
        # tar sent whole), and BuildKit (the engine keeps the last context
        # it was sent and asks only for what changed, for both).
        for builder, kit in (("classic", "0"), ("buildkit", "1")):
            one = ts + ["--builder", builder, "--force", "--no-cache", "svc00"]
            docker_one = ["sh", "-c", f"DOCKER_BUILDKIT={kit} /usr/bin/docker build -q --no-cache "
                          "-t bench-docker/svc00 services/svc00 >/dev/null 2>&1"]
            t_one, _ = measure(one, runs, base)
            t_docker_one, _ = measure(docker_one, runs, base)
            rows.append((f"`tagsmith build --builder {builder} --force --no-cache svc00` (one real build)", t_one, ""))
            rows.append((f"`docker build --no-cache` of the same Dockerfile ({builder})", t_docker_one, ""))
            rows.append(("ratio (target <= 1.1x)", t_one / t_docker_one, "x"))
    finally:
        proc.kill()
    return rows


def main():
    ap = argparse.ArgumentParser()
    # Its own directory: generate() replaces it, and scale.py keeps its trees beside it.
    ap.add_argument("--dir", default="/tmp/tagsmith-bench/bench")
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--files", type=int, default=2500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-build", action="store_true", help="skip the engine and registry figures")
    args = ap.parse_args()

    for tool, package in (("b3sum", "b3sum"), ("/usr/bin/time", "time")):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed: apt-get install -y {package}")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    tagsmith = os.path.join(ROOT, "target", "release", "tagsmith")

    print(f"generating {args.services} x {args.files} files under {args.dir} ...", file=sys.stderr)
    generate(args.dir, args.services, args.files)
    listing = os.path.join(args.dir, ".files")
    paths = sorted(
        os.path.join(dp, f)
        for dp, _, fs in os.walk(os.path.join(args.dir, "services"))
        for f in fs
    )
    with open(listing, "wb") as f:
        f.write(b"\0".join(p.encode() for p in paths))
    total = sum(os.path.getsize(p) for p in paths)

    # Warm the page cache with one untimed run of each.
    b3 = ["xargs", "-0", "b3sum"]
    # --no-stat-cache: every file is hashed, as b3sum does (bench/scale.py
    # measures the stat cache).
    hashing = [tagsmith, "tags", "--no-stat-cache"]
    measure(hashing, 1, args.dir)
    measure(b3, 1, args.dir, listing)
    t_tags, rss_tags = measure(hashing, args.runs, args.dir)
    t_b3, rss_b3 = measure(b3, args.runs, args.dir, listing)

    n_templates, template_bytes = generate_templates(args.dir, args.services)
    # Rendering's own cost: with tiny contexts, hashing costs next to nothing.
    render = [tagsmith, "--config", "render-only.yaml", "--no-stat-cache", "render", "templates"]
    tiny_tags = [tagsmith, "--config", "render-only.yaml", "tags", "--no-stat-cache"]
    measure(render, 1, args.dir)
    t_render, rss_render = measure(render, args.runs * 2, args.dir)
    t_tiny, _ = measure(tiny_tags, args.runs * 2, args.dir)

    ratio = t_tags / t_b3
    render_share = (t_render - t_tiny) / t_tags
    print(f"| what | time (median of {args.runs}) | peak RSS |")
    print("|---|---|---|")
    print(f"| `tagsmith tags` ({len(paths)} files, {total / 1e6:.0f} MB, {os.cpu_count()} cores) | {t_tags:.3f} s | {rss_tags:.1f} MiB |")
    print(f"| `b3sum` over the same file list | {t_b3:.3f} s | {rss_b3:.1f} MiB |")
    print(f"| ratio tagsmith / b3sum | {ratio:.2f}x (target <= 1.0x) | |")
    print(f"| `tagsmith render` of {n_templates} templates ({template_bytes / 1e6:.1f} MB), tiny contexts | {t_render:.3f} s | {rss_render:.1f} MiB |")
    print(f"| `tagsmith tags` on the same tiny contexts (start-up, config, hashing) | {t_tiny:.3f} s | |")
    print(f"| rendering (difference of the two) / hashing the 20 real services | {render_share:.1%} (target <= 10%) | |")
    ok = ratio <= 1.0 and rss_tags <= 64 and render_share <= 0.10
    if not args.no_build and shutil.which("docker-registry") and subprocess.run(
            ["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
        for what, value, unit in bench_build(args.dir, tagsmith, args.runs, args.services):
            if unit == "%":
                print(f"| {what} | {value:.1%} | |")
                ok = ok and value <= 0.05
            elif unit == "x":
                print(f"| {what} | {value:.2f}x | |")
                ok = ok and value <= 1.1
            else:
                print(f"| {what} | {value:.3f} s | {unit} |")
    else:
        print("(engine or docker-registry missing: build figures skipped)", file=sys.stderr)
    print(f"\n{'PASS' if ok else 'MISS'}: ratio {ratio:.2f}, peak RSS {rss_tags:.1f} MiB, "
          f"render {render_share:.1%} of hashing", file=sys.stderr)


if __name__ == "__main__":
    main()
