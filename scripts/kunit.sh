#!/usr/bin/env bash
# The series' KUnit suites in a real kernel: `series --build --kunit` on
# Debian's 6.12 with the 2023 range bug written back (the suites must pass),
# then the same kernel with the no-pgoff mutant's helpers (they must fail).
# A cold kunit.py build of an x86_64 kernel takes minutes more than CI's
# test run allows, so this is its own script (README "--build and --kunit").
#
#   qemu-system-x86     boots the KUnit kernel (TCG: no KVM needed)
#   python3             runs tools/testing/kunit/kunit.py
#   make flex bison bc libelf-dev libssl-dev   the kernel build
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
[ -e /usr/src/linux-source-6.12.tar.xz ] || missing+=(linux-source-6.12)
for tool in gcc make flex bison bc; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
dpkg -s libelf-dev >/dev/null 2>&1 || missing+=(libelf-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)

if [ ${#missing[@]} -gt 0 ]; then
	echo "scripts/kunit.sh: installing ${missing[*]}" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo test --release --test kunit_qemu "$@"
