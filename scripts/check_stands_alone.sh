#!/usr/bin/env bash
# The repository stands alone: no tracked file points to design documents kept outside it, and none speaks of an
# issue tracker (issues, tickets, acceptance criteria). Exit 1 listing the lines found. Run by cluster/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
self=':!scripts/check_stands_alone.sh'
outside='(INTERFACES|ARCHITECTURE|LORS_SPEC|STYLE|NATIVE_DEPS|SLURM|CUDA)(\.md)?\b.*§|\b(INTERFACES|ARCHITECTURE|LORS_SPEC|NATIVE_DEPS|STYLE|SLURM|CUDA)\.md\b|shared/design|\.\./shared/'
tracker='\b[Ii]ssues?\b|\b[Tt]ickets?\b|\b[Aa]cceptance\b'
found=0
if git grep -n -I -E "$outside" -- . "$self"; then
    echo "check_stands_alone.sh: the lines above point to documents outside the repository" >&2
    found=1
fi
if git grep -n -I -E "$tracker" -- . "$self"; then
    echo "check_stands_alone.sh: the lines above speak of an issue tracker" >&2
    found=1
fi
[ "$found" -eq 0 ] && echo "check_stands_alone.sh: OK (no references outside the repository, no tracker wording)"
exit "$found"
