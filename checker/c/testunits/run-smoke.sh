#!/bin/sh
# Build the two test units into shared objects, as the checker does, and
# run the smoke test against each; then the upstream unit's mutant that
# frees folios under mmu_lock, which the punch-hole events must expose.
# Usage: run-smoke.sh [--bench]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
c=$(dirname "$here")
out=${GMF_SMOKE_OUT:-$(mktemp -d)}
cc=${CC:-gcc}

# The kernel's own code-generation flags matter for semantics: signed
# overflow wraps, no strict aliasing, NULL checks are kept.
cflags="-std=gnu11 -O2 -Wall -Werror -Wno-unused-function \
	-fno-strict-overflow -fno-strict-aliasing -fno-delete-null-pointer-checks \
	-fPIC -shared -fvisibility=hidden"
all_ops="-DGMF_HAVE_OP_INVALIDATE -DGMF_HAVE_OP_CLASSIFY -DGMF_HAVE_OP_PREPARE \
	-DGMF_HAVE_OP_RMP_INVALIDATE -DGMF_HAVE_OP_PREFAULT -DGMF_HAVE_OP_BIND \
	-DGMF_HAVE_OP_PUNCH_HOLE"
solo_ops="-DGMF_HAVE_OP_INVALIDATE -DGMF_HAVE_OP_CLASSIFY -DGMF_HAVE_OP_BIND \
	-DGMF_HAVE_OP_PUNCH_HOLE"

# shellcheck disable=SC2086
$cc $cflags -DGMF_PROFILE=0 -DGMF_UNIT="\"$here/upstream.c\"" $all_ops \
	"$c/unit.c" "$c/shim/shim.c" -o "$out/upstream.so"
# shellcheck disable=SC2086
$cc $cflags -DGMF_PROFILE=1 -DGMF_UNIT="\"$here/solo2023.c\"" $solo_ops \
	"$c/unit.c" "$c/shim/shim.c" -o "$out/solo2023.so"
# shellcheck disable=SC2086
$cc $cflags -DGMF_PROFILE=0 -DGMF_UNIT="\"$here/upstream.c\"" $all_ops \
	-DGMF_SMOKE_RMP_UNDER_MMU_LOCK \
	"$c/unit.c" "$c/shim/shim.c" -o "$out/rmp-under-mmu-lock.so"
$cc -std=gnu11 -O2 -Wall -Werror "$here/smoke.c" -o "$out/smoke" -ldl

"$out/smoke" "$out/upstream.so" upstream "$@"
"$out/smoke" "$out/solo2023.so" solo2023 "$@"
"$out/smoke" "$out/rmp-under-mmu-lock.so" rmp-under-mmu-lock
