#!/usr/bin/env bash
# The Debian package, tested for real: builds it (scripts/package.sh), checks it with lintian,
# installs it into a fresh Debian 12 root made by debootstrap from Debian's own packages (cached
# in /var/cache/checkallsslcerts-ci/), runs it there — --version, config check, a dry run,
# man -w, systemd-analyze verify of the installed units — then removes and purges it, checking
# what stays and what goes. Run as root. About 3 minutes with the root cached, 6 without.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test-package: run as root (debootstrap, chroot)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
for tool in debootstrap lintian; do
  command -v "$tool" >/dev/null || apt-get install -y -qq --no-install-recommends "$tool"
done

deb=$(scripts/package.sh | tail -n 1)
echo "== package: $deb"
(cd "$(dirname "$deb")" && sha256sum -c SHA256SUMS)

echo "== lintian"
# Errors fail; warnings are printed (each override is explained in docs/packaging.md).
lintian --fail-on error --suppress-tags-from-file packaging/debian/lintian-overrides.txt "$deb"

cache=/var/cache/checkallsslcerts-ci
base=$cache/bookworm-minbase-v2.tar
if [ ! -f "$base" ]; then
  echo "== debootstrap (once; cached in $base)"
  rm -rf "$cache/build"
  debootstrap --variant=minbase bookworm "$cache/build" http://deb.debian.org/debian >/dev/null
  # man-db for `man -w`, systemd for `systemd-analyze verify` of the installed units.
  chroot "$cache/build" apt-get install -y -qq --no-install-recommends man-db systemd >/dev/null
  tar -C "$cache/build" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$cache/build"
fi

root=$(mktemp -d /tmp/checkallsslcerts-deb-root.XXXXXX)
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
cp "$deb" "$root/tmp/checkallsslcerts.deb"
in_root() { chroot "$root" "$@"; }
fail() { echo "test-package: FAILED: $*" >&2; exit 1; }

echo "== install (apt resolves the dependencies from Debian)"
in_root apt-get update -qq
in_root apt-get install -y -qq /tmp/checkallsslcerts.deb >/dev/null

echo "== what the package put in place"
version=$(in_root checkallsslcerts --version)
echo "$version"
grep -q "^commit: *[0-9a-f]\{12\}$" <<<"$version" || fail "--version names no commit"
grep -q "^default policy: sha256 [0-9a-f]\{64\}$" <<<"$version" || fail "--version names no policy sha256"
[ "$(stat -c %a "$root/var/lib/checkallsslcerts")" = 700 ] || fail "state dir is not 0700"
[ -f "$root/var/lib/checkallsslcerts/disable_service_certificate_management" ] || fail "fresh install acts before review"
[ "$(stat -c %a "$root/etc/checkallsslcerts/config.toml")" = 600 ] || fail "config is not 0600"
grep -qx /etc/checkallsslcerts/config.toml "$root/var/lib/dpkg/info/checkallsslcerts.conffiles" || fail "config is not a conffile"
[ -L "$root/etc/systemd/system/timers.target.wants/checkallsslcerts.timer" ] || fail "timer not enabled"
[ -f "$root/etc/cron.d/checkallsslcerts" ] || fail "no cron line"
for f in /usr/share/bash-completion/completions/checkallsslcerts /usr/share/zsh/vendor-completions/_checkallsslcerts \
         /usr/share/fish/vendor_completions.d/checkallsslcerts.fish /usr/share/doc/checkallsslcerts/examples/config.toml \
         /usr/share/doc/checkallsslcerts/default-policy/src/rules.rs /usr/share/doc/checkallsslcerts/copyright; do
  [ -f "$root$f" ] || fail "missing $f"
done
in_root man -w checkallsslcerts | grep -q "man8/checkallsslcerts.8.gz" || fail "man -w checkallsslcerts"
in_root man -w checkallsslcerts.toml | grep -q "man5/checkallsslcerts.toml.5.gz" || fail "man -w checkallsslcerts.toml"

echo "== it runs there, as installed"
in_root checkallsslcerts config check
code=0
in_root checkallsslcerts --dry-run || code=$?
[ "$code" = 0 ] || fail "dry run exit $code"
for unit in checkallsslcerts.service checkallsslcerts.timer; do
  in_root systemd-analyze verify "/lib/systemd/system/$unit" || fail "systemd-analyze verify $unit"
done

echo "== remove: the program goes, the configuration and the state stay"
mkdir -p "$root/etc/ssl/service" && echo "a service's certificate" > "$root/etc/ssl/service/cert.pem"
in_root apt-get remove -y -qq checkallsslcerts >/dev/null
[ ! -e "$root/usr/bin/checkallsslcerts" ] || fail "binary stays after remove"
[ -f "$root/etc/checkallsslcerts/config.toml" ] || fail "config removed by remove"
[ -d "$root/var/lib/checkallsslcerts" ] || fail "state removed by remove"

echo "== purge: the configuration and the state go, the services' certificates stay"
in_root apt-get purge -y -qq checkallsslcerts >/dev/null
[ ! -e "$root/etc/checkallsslcerts" ] || fail "config stays after purge"
[ ! -e "$root/var/lib/checkallsslcerts" ] || fail "state stays after purge"
[ -f "$root/etc/ssl/service/cert.pem" ] || fail "purge touched a service's certificate"
echo "test-package: OK"
