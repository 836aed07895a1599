#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root, Node >= 20.19 on PATH) to run weft:
# installs the Debian packages that are missing, then the npm dependencies,
# then builds. With --test it also installs what the whole test suite needs
# (podman, containerd, the reference CNI plugins, ...), listed in .ci/packages.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

want=(iproute2 nftables iputils-ping util-linux curl)
# node-gyp builds weft's setns addon (native/netns) with these.
want+=(make g++ python3)
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

# weft's native addon (native/netns: setns in netns.c, thread-pool rtnetlink in rtnl.c): with it the router programs veths
# in process over rtnetlink; without it, by spawning ip(8) (slower; `weft status`
# warns). N-API, so one build serves every Node version. Node's headers come
# from /usr/include/node when they are there, so nothing is downloaded.
addon=native/netns/build/Release/weft_netns.node
if [ ! -f "$addon" ] || [ native/netns/netns.c -nt "$addon" ] || [ native/netns/rtnl.c -nt "$addon" ] || [ native/netns/binding.gyp -nt "$addon" ]; then
  gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
  nodedir=()
  [ -f /usr/include/node/node_api.h ] && nodedir=(--nodedir=/usr)
  log=$(mktemp)
  if [ -f "$gyp" ] && (cd native/netns && node "$gyp" rebuild "${nodedir[@]}" --loglevel=error) >"$log" 2>&1; then
    echo "setup: built $addon"
  else
    echo "setup: could not build $addon (the router will spawn ip(8) instead):" >&2
    tail -n 20 "$log" >&2
    # The test suite requires the in-process path (test/integration/netlink-path.test.ts).
    [ "${1-}" = "--test" ] && { rm -f "$log"; exit 1; }
  fi
  rm -f "$log"
fi

npm run --silent build
