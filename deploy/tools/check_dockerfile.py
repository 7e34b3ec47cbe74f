"""Checks deploy/Dockerfile and .dockerignore against Cargo.toml without Docker:
the build uses the `dist` profile, `--locked` and the `dcr-gateway` bin, which
exist, and leaves the dev upstream out (`--no-default-features`, the features
it names not enabling it) while keeping mimalloc; every file the build needs
is copied in and not ignored; the runtime stage is distroless, non-root, and
sets only known DCR_GATEWAY_* variables, none that turns on the dev upstream.

  check_dockerfile.py REPO
"""

import fnmatch
import json
import pathlib
import re
import shlex
import sys
import tomllib

import settings

errors = []


def err(where, msg):
    errors.append(f"ERROR {where}: {msg}")


def instructions(text):
    """(INSTRUCTION, args) per Dockerfile instruction, continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def pairs(stage, word):
    """The KEY=VALUE pairs of every `word` (LABEL, ENV) instruction of a stage."""
    out = {}
    for w, a in stage:
        if w == word:
            for item in shlex.split(a):
                k, _, v = item.partition("=")
                out[k] = v
    return out


def ignored(path, patterns):
    """Whether .dockerignore (simple patterns, `!` exceptions) excludes path."""
    result = False
    for p in patterns:
        neg = p.startswith("!")
        p = p.lstrip("!").strip("/")
        parts = path.split("/")
        hit = any(fnmatch.fnmatch("/".join(parts[: i + 1]), p) for i in range(len(parts)))
        if p.startswith("**/"):
            hit = hit or any(fnmatch.fnmatch(x, p[3:]) for x in parts)
        if hit:
            result = not neg
    return result


def check(root, text=None):
    """Checks the Dockerfile (or `text` in its place) against the repository."""
    df_path, di_path, cargo_path = root / "deploy/Dockerfile", root / ".dockerignore", root / "Cargo.toml"
    df = str(df_path.relative_to(root))
    cargo = tomllib.loads(cargo_path.read_text())
    ins = instructions(text if text is not None else df_path.read_text())

    # Cargo.toml: what the Dockerfile relies on.
    if "dist" not in cargo.get("profile", {}):
        err("Cargo.toml", "no [profile.dist], which deploy/Dockerfile builds with")
    bins = {b["name"]: b.get("path", f"src/bin/{b['name']}.rs") for b in cargo.get("bin", [])}
    if cargo["package"]["name"] == "dcr-gateway" and cargo["package"].get("autobins", True):
        bins.setdefault("dcr-gateway", "src/main.rs")
    if "dcr-gateway" not in bins or not (root / bins["dcr-gateway"]).exists():
        err("Cargo.toml", "no bin target dcr-gateway (with its source file)")

    stages = [i for i, (w, _) in enumerate(ins) if w == "FROM"]
    if len(stages) < 2:
        err(df, "must be multi-stage (a builder and a runtime stage)")
        return
    builder, runtime = ins[stages[0]:stages[-1]], ins[stages[-1]:]
    # Every base image pinned by digest: a tag can be moved to other bytes.
    names = set()
    for i in stages:
        words = ins[i][1].split()
        image = next(w for w in words if not w.startswith("--"))
        if image not in names and not re.search(r"@sha256:[0-9a-f]{64}$", image):
            err(df, f"FROM {image}: pin the base image by digest (image:tag@sha256:...)")
        if len(words) >= 3 and words[-2].upper() == "AS":
            names.add(words[-1])

    runs = [a for w, a in builder if w == "RUN"]
    build = [a for a in runs if "cargo build" in a]
    if not build:
        err(df, "no RUN cargo build in the builder stage")
    else:
        words = shlex.split(build[0].split("cargo build", 1)[1].split("&&")[0])
        for flag, want in (("--profile", "dist"), ("--bin", "dcr-gateway")):
            if flag not in words or words[words.index(flag) + 1] != want:
                err(df, f"cargo build must use {flag} {want}")
        if "--locked" not in words:
            err(df, "cargo build must use --locked (the committed Cargo.lock)")
        check_features(df, cargo, words)
    if "target/dist/dcr-gateway" not in " ".join(a for _, a in builder):
        err(df, "the builder never takes target/dist/dcr-gateway, the binary --profile dist writes")

    # Everything the build reads must be copied in, and not excluded by .dockerignore.
    copied = set()
    for w, a in builder:
        if w == "COPY" and "--from" not in a:
            copied.update(x.rstrip("/") for x in shlex.split(a)[:-1] if not x.startswith("--"))
    targets = {"bench": "benches/{}.rs", "test": "tests/{}.rs", "example": "examples/{}.rs", "bin": "src/bin/{}.rs"}
    needed = {"Cargo.toml", "Cargo.lock", "src", "proto"}
    if (root / "build.rs").exists():
        needed.add("build.rs")
    # build.rs links the binary in the order link/ holds.
    if (root / "link").exists():
        needed.add("link")
    for kind in ("bench", "test", "example", "bin"):
        for t in cargo.get(kind, []):
            path = t.get("path") or targets[kind].format(t["name"])
            needed.add(path.split("/")[0] if "/" in path else path)
    # The dependency layer fetches with stand-in files for every declared target.
    fetch = next((a for a in runs if "cargo fetch" in a), None)
    if fetch is not None:
        for kind in ("bench", "test", "example", "bin"):
            for t in cargo.get(kind, []):
                path = t.get("path") or targets[kind].format(t["name"])
                if path not in fetch:
                    err(df, f"the `cargo fetch` step lacks a stand-in for {path}, declared in Cargo.toml")
    # Workspace members: cargo reads each member's manifest and target files
    # before it fetches or builds anything.
    for member in cargo.get("workspace", {}).get("members", []):
        needed.add(member.split("/")[0])
        if fetch is not None:
            if f"{member}/Cargo.toml" not in copied:
                err(df, f"the dependency layer does not COPY {member}/Cargo.toml, a workspace member")
            if f"{member}/src/" not in fetch:
                err(df, f"the `cargo fetch` step lacks a stand-in under {member}/src/")
    for n in sorted(needed):
        if n not in copied:
            err(df, f"the builder does not COPY {n}, which cargo needs")
    patterns = [l.strip() for l in di_path.read_text().splitlines() if l.strip() and not l.startswith("#")] if di_path.exists() else []
    if not di_path.exists():
        err(".dockerignore", "missing: target/ and .git would be sent as build context")
    for n in sorted(needed):
        if ignored(n, patterns):
            err(".dockerignore", f"excludes {n}, which the build needs")
    for n in ("target", ".git", "examples/node/node_modules"):
        if not ignored(n, patterns):
            err(".dockerignore", f"does not exclude {n}")

    # Runtime stage.
    base = runtime[0][1].split()[0].split("@")[0]
    if not base.startswith("gcr.io/distroless/") or not base.endswith(":nonroot"):
        err(df, f"runtime stage must be a distroless :nonroot image, is {base}")
    user = [a for w, a in runtime if w == "USER"]
    # Numeric, so a pod's runAsNonRoot can verify it without the image's passwd.
    if not user or user[-1] != "65532:65532":
        err(df, "runtime stage must run as USER 65532:65532 (numeric uid and gid)")
    # OCI annotations: present, the license Cargo.toml's, the version its too.
    labels = pairs(runtime, "LABEL")
    args = {}
    for w, a in runtime:
        if w == "ARG":
            k, _, v = a.partition("=")
            args[k.strip()] = v.strip()
    oci = "org.opencontainers.image."
    for key in ("source", "version", "revision", "licenses", "title"):
        if oci + key not in labels:
            err(df, f"runtime stage lacks LABEL {oci}{key}")
    package = cargo["package"]
    license = package.get("license")
    if isinstance(license, dict):
        license = cargo.get("workspace", {}).get("package", {}).get("license")
    if labels.get(oci + "licenses") not in (None, license):
        err(df, f"LABEL {oci}licenses is {labels.get(oci + 'licenses')!r}, Cargo.toml says {license!r}")
    version = labels.get(oci + "version", "")
    if version == "${VERSION}":
        version = args.get("VERSION", "")
    if oci + "version" in labels and version != package["version"]:
        err(df, f"LABEL {oci}version is {version!r}, Cargo.toml's version is {package['version']!r}")
    entry = [a for w, a in runtime if w == "ENTRYPOINT"]
    if not entry or json.loads(entry[-1]) != ["/usr/local/bin/dcr-gateway"]:
        err(df, 'ENTRYPOINT must be ["/usr/local/bin/dcr-gateway"]')
    cmd = [a for w, a in runtime if w == "CMD"]
    if not cmd or json.loads(cmd[-1]) != ["serve"]:
        err(df, 'CMD must be ["serve"]')
    if not any(w == "EXPOSE" and "50051" in a.split() for w, a in runtime):
        err(df, "must EXPOSE 50051")
    if not any(w == "COPY" and "--from=" in a and a.split()[-1] == "/usr/local/bin/dcr-gateway" for w, a in runtime):
        err(df, "runtime stage must COPY the binary to /usr/local/bin/dcr-gateway")
    env = pairs(runtime, "ENV")
    known = settings.env_names(root)
    for k in env:
        if k.startswith("DCR_GATEWAY_") and k not in known:
            err(df, f"ENV {k} is not a setting of the gateway")
    if any(k.startswith("DCR_GATEWAY_DEV_UPSTREAM") for k in env):
        err(df, "the image must not set DCR_GATEWAY_DEV_UPSTREAM*: no stand-in authorization server")
    store = env.get("DCR_GATEWAY_TOKEN_STORE_PATH", "")
    if not store.startswith("/var/lib/dcr-gateway/"):
        err(df, "ENV DCR_GATEWAY_TOKEN_STORE_PATH must put the store under /var/lib/dcr-gateway (a mounted volume)")
    if env.get("DCR_GATEWAY_LISTEN", "127.0.0.1").split(":")[0] not in ("127.0.0.1", "[::1]"):
        err(df, "the image must not listen beyond loopback by default (a sidecar)")


def check_features(df, cargo, words):
    """The release binary has no dev upstream (a stand-in authorization server
    one variable turns on) and keeps mimalloc: `--no-default-features` and
    `--features` naming mimalloc, and nothing that enables dev-upstream."""
    features = cargo.get("features", {})
    for f in ("dev-upstream", "mimalloc"):
        if f not in features:
            err("Cargo.toml", f"no feature {f!r}, which deploy/Dockerfile's build relies on")
    named = [x for i, w in enumerate(words) if w == "--features" and i + 1 < len(words)
             for x in words[i + 1].replace(",", " ").split()]
    named += [x for w in words if w.startswith("--features=") for x in w[11:].replace(",", " ").split()]
    on, todo = set(), list(named)
    if "--no-default-features" not in words:
        todo += features.get("default", [])
    while todo:
        f = todo.pop()
        if f not in on:
            on.add(f)
            todo += [x for x in features.get(f, []) if x in features]
    if "--all-features" in words or "dev-upstream" in on:
        err(df, "cargo build enables the dev-upstream feature: build with --no-default-features --features mimalloc")
    if "mimalloc" not in on:
        err(df, "cargo build leaves out the mimalloc feature (the allocator the gateway is measured with)")


# Each breaks one rule; the check must report it (`--self-test`).
BREAKAGES = [
    ("USER 65532:65532", "USER nonroot", "numeric uid and gid"),
    ('org.opencontainers.image.licenses="Apache-2.0"', 'org.opencontainers.image.licenses="MIT"', "licenses"),
    ("ARG VERSION=0.1.0", "ARG VERSION=9.9.9", "version"),
    ("org.opencontainers.image.source=", "org.example.source=", "image.source"),
    ("--no-default-features --features mimalloc ", "", "dev-upstream feature"),
    ("--features mimalloc ", "", "mimalloc feature"),
    ("COPY link ./link\n", "", "COPY link"),
    ("ENV DCR_GATEWAY_TOKEN_STORE_PATH=", "ENV DCR_GATEWAY_DEV_UPSTREAM=true DCR_GATEWAY_TOKEN_STORE_PATH=", "DCR_GATEWAY_DEV_UPSTREAM"),
    ("@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f", "", "pin the base image by digest"),
    ("@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082", "", "pin the base image by digest"),
]


def self_test(root):
    """Every breakage in BREAKAGES is caught; exits non-zero if one is not."""
    text = (root / "deploy/Dockerfile").read_text()
    for old, new, expect in BREAKAGES:
        if old not in text:
            sys.exit(f"ERROR self-test: {old!r} is not in deploy/Dockerfile")
        errors.clear()
        check(root, text.replace(old, new))
        if not any(expect in e for e in errors):
            sys.exit(f"ERROR self-test: replacing {old!r} by {new!r} was not caught")
    errors.clear()
    print(f"ok   deploy/Dockerfile checks catch {len(BREAKAGES)} breakages")


def main():
    args = [a for a in sys.argv[1:] if a != "--self-test"]
    root = pathlib.Path(args[0] if args else ".")
    if "--self-test" in sys.argv:
        self_test(root)
    check(root)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        sys.exit(1)
    print("ok   deploy/Dockerfile: dist profile, --locked, bin dcr-gateway without the dev upstream, context complete, distroless runtime as 65532:65532, OCI labels")


if __name__ == "__main__":
    main()
