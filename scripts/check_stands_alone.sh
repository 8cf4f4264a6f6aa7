#!/usr/bin/env bash
# The repository stands alone: no tracked file points to design documents kept outside it, and none speaks of the
# work tracker's items or their criteria. Exit 1 listing the lines found. Run by cluster/test.sh.
# Each pattern holds one letter in brackets, so this file's own text never matches what it looks for.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
names='[I]NTERFACES|[A]RCHITECTURE|[L]ORS_SPEC|[S]TYLE|[N]ATIVE_DEPS|[S]LURM|[C]UDA'
outside="($names)(\\.md)?\\b.*§|\\b($names)\\.md\\b|shared/[d]esign|\\.\\./[s]hared/"
tracker='\b[I]ssues?\b|\b[i]ssues?\b|\b[T]ickets?\b|\b[t]ickets?\b|\b[A]cceptance\b|\b[a]cceptance\b'
found=0
if git grep -n -I -E "$outside" -- .; then
    echo "check_stands_alone.sh: the lines above point to documents outside the repository" >&2
    found=1
fi
if git grep -n -I -E "$tracker" -- .; then
    echo "check_stands_alone.sh: the lines above speak of the work tracker" >&2
    found=1
fi
[ "$found" -eq 0 ] && echo "check_stands_alone.sh: OK (no references outside the repository, no tracker wording)"
exit "$found"
