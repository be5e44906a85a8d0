#!/usr/bin/env bash
# Runs the whole gmemforge test suite on a fresh Debian machine: installs the
# system packages the tests use if they are missing, then runs every test.
#
#   gcc                 compiles the kernel C under test (through the cc crate)
#   libclang-dev        bindgen, for the test that the committed ABI bindings are fresh
#   linux-source-6.12   a real upstream tree, and its scripts/checkpatch.pl
#   linux-source-6.1    a real tree from before guest_memfd (review refuses it)
#   perl                runs checkpatch.pl
#   chromium            renders the --report page for its screenshot test
#   make flex bison bc libelf-dev libssl-dev
#                       the kernel's own build, for `series --build` (tests/kbuild.rs)
#
# The seccomp filter that confines C under test is compiled by the
# seccompiler crate (pure Rust): no libseccomp package is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v perl >/dev/null 2>&1 || missing+=(perl)
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
[ -e /usr/src/linux-source-6.12.tar.xz ] || missing+=(linux-source-6.12)
[ -e /usr/src/linux-source-6.1.tar.xz ] || missing+=(linux-source-6.1)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v git >/dev/null 2>&1 || missing+=(git)
for tool in make flex bison bc; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
dpkg -s libelf-dev >/dev/null 2>&1 || missing+=(libelf-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)

if [ ${#missing[@]} -gt 0 ]; then
	echo "scripts/test.sh: installing ${missing[*]}" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo test --workspace "$@"
