#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root, Node >= 20.19 on PATH) to run weft:
# installs the Debian packages that are missing, then the npm dependencies,
# then builds. With --test it also installs what the whole test suite needs
# (podman, containerd, the reference CNI plugins, ...), listed in .ci/packages.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

want=(iproute2 nftables iputils-ping util-linux curl)
if [ "${1-}" = "--test" ]; then
  mapfile -t extra < <(grep -vE '^\s*(#|$)' .ci/packages.txt)
  want+=("${extra[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("weft needs Node >= 20.19, found "+process.version); process.exit(1) }'
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm ci` refuses a lock file without entries for every platform's optional
  # prebuilt packages, and the registry reachable here has none for darwin/win32
  # (msgpackr-extract). `npm install` then installs exactly the locked versions.
  err=$(mktemp)
  if ! npm ci --no-audit --no-fund --loglevel=error 2>"$err"; then
    echo "setup: npm ci refused the lock file ($(grep -m1 'Missing:' "$err" || head -n1 "$err")); installing the locked versions with npm install"
    npm install --no-audit --no-fund --loglevel=error
  fi
  rm -f "$err"
fi
npm run --silent build
