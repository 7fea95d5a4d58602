#!/usr/bin/env bash
# run_python's sandbox is bubblewrap (docs/security.md). Install it from apt when it is missing and
# check that it can build a sandbox here (user namespaces); fail loudly otherwise, so that the
# red-team suite never silently runs without it. With --worker-user, also create the unprivileged
# user that tests/security runs the suite as (horizon-worker) when this script runs as root.
set -euo pipefail
BWRAP=${HORIZON_SANDBOX_BWRAP:-$(command -v bwrap || echo /usr/bin/bwrap)}
SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n)
fi
if [[ ! -x "$BWRAP" ]]; then
  echo "ensure_sandbox: $BWRAP is missing; installing bubblewrap with apt-get" >&2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_sandbox: apt-get is not available; install bubblewrap with the system package manager" >&2
    exit 1
  fi
  if [[ $(id -u) -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
    echo "ensure_sandbox: not root and no sudo; run: apt-get install bubblewrap" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get -qq update >/dev/null \
    || ! "${SUDO[@]}" apt-get -qq install -y --no-install-recommends bubblewrap >/dev/null; then
    echo "ensure_sandbox: apt-get could not install bubblewrap" >&2
    exit 1
  fi
  BWRAP=$(command -v bwrap || echo /usr/bin/bwrap)
fi
# The same namespaces the sandbox asks for, as the unprivileged user bwrap runs as (a root worker starts
# it as uid 65534; bwrap is never setuid here): root itself could make them where users cannot.
AS_SANDBOX_USER=()
if [[ $(id -u) -eq 0 ]]; then
  AS_SANDBOX_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
if ! "${AS_SANDBOX_USER[@]}" "$BWRAP" --unshare-user --unshare-ipc --unshare-pid --unshare-net --unshare-uts --disable-userns \
  --ro-bind / / --die-with-parent -- /bin/true 2>/tmp/ensure_sandbox.$$; then
  echo "ensure_sandbox: bubblewrap is installed but cannot create namespaces here: $(tail -1 /tmp/ensure_sandbox.$$)" >&2
  echo "ensure_sandbox: allow unprivileged user namespaces (docs/security.md: kernel.unprivileged_userns_clone," >&2
  echo "ensure_sandbox: user.max_user_namespaces, AppArmor's apparmor_restrict_unprivileged_userns, a container's seccomp profile)" >&2
  rm -f /tmp/ensure_sandbox.$$
  exit 1
fi
rm -f /tmp/ensure_sandbox.$$
if [[ "${1:-}" == "--worker-user" && $(id -u) -eq 0 ]]; then
  USER_NAME=${HORIZON_REDTEAM_USER:-horizon-worker}
  if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
    echo "ensure_sandbox: created the unprivileged user $USER_NAME for tests/security" >&2
  fi
fi
