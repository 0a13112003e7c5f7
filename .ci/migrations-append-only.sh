#!/usr/bin/env bash
# Migrations only gain files: once a migration may have run on a database
# that matters, its file is never edited, renamed or removed (the migrator
# refuses a database whose applied migration differs, src/db/migrate.rs).
#
# migrations/CHECKSUMS lists every migration, one line each:
#   <version> <file name> <sha256 of the file>
# (blank lines and lines starting with # are comments). This checks that
#   1. every migrations/*.sql is listed, with its exact sha256 and the
#      version its name starts with;
#   2. every listed file exists;
#   3. in git history, each committed version of CHECKSUMS (and the working
#      tree's) only appended lines to the one before it.
# Until CHECKSUMS exists (the schema baseline is not final yet) there is
# nothing to hold: the check passes with a notice.
set -euo pipefail
cd "$(dirname "$0")/.."

list=migrations/CHECKSUMS
failures=0
fail() { echo "migrations append-only: $*" >&2; failures=$((failures + 1)); }

history=$(git log --format=%H -- "$list" 2>/dev/null || true)
if [ ! -f "$list" ] && [ -z "$history" ]; then
    echo "migrations append-only: $list does not exist yet; nothing to check (create it when the baseline is final)"
    exit 0
fi
[ -f "$list" ] || fail "$list was removed (it existed in $(printf '%s\n' "$history" | head -1))"

# 1 and 2: the list and the directory agree.
if [ -f "$list" ]; then
    declare -A listed_sha=()
    declare -A listed_version=()
    line_no=0
    while IFS= read -r line || [ -n "$line" ]; do
        line_no=$((line_no + 1))
        case $line in '' | '#'*) continue ;; esac
        read -r version name sha extra <<<"$line"
        if [ -z "${sha:-}" ] || [ -n "${extra:-}" ] || ! [[ $version =~ ^[0-9]+$ && $sha =~ ^[0-9a-f]{64}$ ]]; then
            fail "$list line $line_no is not '<version> <file name> <sha256>': $line"
            continue
        fi
        if [ -n "${listed_sha[$name]:-}" ]; then
            fail "$list lists $name twice"
        fi
        for other in "${!listed_version[@]}"; do
            if [ "$((10#${listed_version[$other]}))" -eq "$((10#$version))" ]; then
                fail "$list gives version $version to both $other and $name"
            fi
        done
        listed_sha[$name]=$sha
        listed_version[$name]=$version
        if [ ! -f "migrations/$name" ]; then
            fail "$name is listed in $list but migrations/$name does not exist (a migration is never removed or renamed)"
        fi
    done <"$list"

    for path in migrations/*.sql; do
        [ -e "$path" ] || continue
        name=${path#migrations/}
        actual=$(sha256sum "$path" | cut -d' ' -f1)
        if [ -z "${listed_sha[$name]:-}" ]; then
            fail "$name is not listed in $list: append '<version> $name $actual'"
            continue
        fi
        if [ "${listed_sha[$name]}" != "$actual" ]; then
            fail "$name was edited: its sha256 is $actual, $list says ${listed_sha[$name]} (add a new migration instead)"
        fi
        prefix=${name%%_*}
        if ! [[ $prefix =~ ^[0-9]+$ ]] || [ "$((10#$prefix))" -ne "$((10#${listed_version[$name]}))" ]; then
            fail "$name is listed as version ${listed_version[$name]}, which its name does not start with"
        fi
    done
fi

# 3: every version of the list extends the one before it.
if [ "$(git rev-parse --is-shallow-repository 2>/dev/null || echo false)" = true ]; then
    echo "migrations append-only: warning: shallow clone, only the history present is checked" >&2
fi
older=""
older_label=""
# Oldest first; the working tree's list comes last.
for commit in $(printf '%s\n' "$history" | tac) WORKTREE; do
    if [ "$commit" = WORKTREE ]; then
        [ -f "$list" ] || break
        # The x keeps trailing newlines, which $(...) would strip.
        content=$(cat "$list"; echo x)
        label="the working tree"
    elif git cat-file -e "$commit:$list" 2>/dev/null; then
        content=$(git show "$commit:$list"; echo x)
        label="commit $(git rev-parse --short "$commit")"
    else
        fail "$list was removed in commit $(git rev-parse --short "$commit")"
        older=""
        continue
    fi
    content=${content%x}
    # Compared line by line: a last line without its newline is still a line.
    [ -z "$content" ] || [[ $content == *$'\n' ]] || content+=$'\n'
    if [ -n "$older" ] && [ "${content:0:${#older}}" != "$older" ]; then
        fail "$list in $label does not only append to $older_label:"
        diff <(printf '%s' "$older") <(printf '%s' "$content") >&2 || true
    fi
    older=$content
    older_label=$label
done

if [ "$failures" -gt 0 ]; then
    exit 1
fi
echo "migrations append-only: $(grep -cvE '^(#|$)' "$list") migrations listed, each file as listed, $list only appended to"
