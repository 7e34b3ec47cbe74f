"""The gateway's real settings, read from the Rust sources, so the manifests can
be checked against what `dcr-gateway serve` accepts rather than a copied list.

TOML keys are the serde field names of `RawConfig` (src/config/raw.rs, and any
struct it flattens, wherever it is defined in src/); a field whose type is
another `Raw*` struct without `serde(flatten)` is a table (`[token_store]`).
Environment variables are every `env = "DCR_GATEWAY_..."` in src/, and every
`..._ENV: &str = "DCR_GATEWAY_..."` constant (the secret values, which have no flag).
"""

import functools
import pathlib
import re

STRUCT = re.compile(r"pub struct (\w+)\s*\{(.*?)\n\}", re.S)
FIELD = re.compile(r"^\s*pub(?:\([^)]*\))?\s+(\w+):\s*(.+?),?\s*$")
ENV = re.compile(r'(?:\benv\s*=|_ENV:\s*&str\s*=)\s*"(DCR_GATEWAY_[A-Z0-9_]+)"')


@functools.lru_cache(maxsize=None)
def _sources(root):
    """(path, text) of every .rs file under src/, read once per run."""
    return tuple((p, p.read_text()) for p in sorted(pathlib.Path(root, "src").rglob("*.rs")))


@functools.lru_cache(maxsize=None)
def _structs(root):
    out = {}
    # src/config/ first, so its structs win over same-named ones elsewhere.
    for path, text in sorted(_sources(root), key=lambda s: ("/config" not in str(s[0]), str(s[0]))):
        for name, body in STRUCT.findall(text):
            if name in out:
                continue
            fields, attrs = [], ""
            for line in body.splitlines():
                m = FIELD.match(line)
                if not m:
                    # Doc comments and attributes (which may span lines) of the next field.
                    attrs += line + "\n"
                    continue
                field, ty = m.groups()
                serde = " ".join(re.findall(r"serde\(([^)]*)\)", attrs))
                attrs = ""
                if re.search(r"\bskip\b|skip_deserializing", serde):
                    continue
                rename = re.search(r'rename\s*=\s*"([^"]+)"', serde)
                fields.append((rename.group(1) if rename else field, ty.strip(), "flatten" in serde))
            out[name] = fields
    return out


def config_keys(root):
    """{top-level key: None, table name: set(keys)} accepted by `--config`."""
    root = pathlib.Path(root)
    structs = _structs(root)
    if "RawConfig" not in structs:
        raise SystemExit(f"{root}/src: no `pub struct RawConfig` found (src/config/raw.rs moved?)")

    def expand(name, seen=()):
        keys = {}
        for field, ty, flatten in structs[name]:
            inner = re.sub(r"^Option<(.*)>$", r"\1", ty)
            # A flattened struct adds its keys; a nested Raw* struct is a table.
            if inner in structs and inner not in seen and (flatten or inner.startswith("Raw")):
                if flatten:
                    keys.update(expand(inner, seen + (name,)))
                else:
                    keys[field] = set(expand(inner, seen + (name,)))
            else:
                keys[field] = None
        return keys

    return expand("RawConfig")


def client_keys(root):
    """The keys of a `[[clients]]` table: the serde fields of `RawClient`."""
    structs = _structs(pathlib.Path(root))
    if "RawClient" not in structs:
        raise SystemExit(f"{root}/src: no `pub struct RawClient` found (src/config/managed.rs moved?)")
    return {field for field, _, _ in structs["RawClient"]}


@functools.lru_cache(maxsize=None)
def env_names(root):
    return frozenset(m for _, text in _sources(pathlib.Path(root)) for m in ENV.findall(text))


DEFAULT = re.compile(r"pub const DEFAULT_(\w+):\s*[\w:<>]+\s*=\s*([^;]+);")


@functools.lru_cache(maxsize=None)
def defaults(root):
    """The gateway's `DEFAULT_*` constants that are numbers or durations, by
    name without the prefix: {"MAX_IN_FLIGHT": 64, "SHUTDOWN_GRACE": 25.0, ...}
    (durations in seconds)."""
    raw = {name: expr.strip() for _, text in _sources(pathlib.Path(root)) for name, expr in DEFAULT.findall(text)}

    def value(expr, depth=0):
        expr = expr.replace("_", "") if re.fullmatch(r"[0-9_]+", expr) else expr
        if re.fullmatch(r"[0-9]+", expr):
            return int(expr)
        if m := re.fullmatch(r"([0-9]+)\s*<<\s*([0-9]+)", expr):
            return int(m[1]) << int(m[2])
        if m := re.fullmatch(r"Duration::from_(secs|millis)\(([0-9_]+)\)", expr):
            return int(m[2].replace("_", "")) / (1 if m[1] == "secs" else 1000)
        if expr == "Duration::ZERO":
            return 0.0
        if (m := re.fullmatch(r"(?:[\w:]+::)?DEFAULT_(\w+)", expr)) and depth < 3 and m[1] in raw:
            return value(raw[m[1]], depth + 1)
        return None

    return {k: v for k, v in ((k, value(e)) for k, e in raw.items()) if v is not None}


if __name__ == "__main__":
    import sys
    r = sys.argv[1] if len(sys.argv) > 1 else "."
    for k, v in sorted(config_keys(r).items()):
        print(k, sorted(v) if v is not None else "")
    print(sorted(env_names(r)))
    print(defaults(r))
