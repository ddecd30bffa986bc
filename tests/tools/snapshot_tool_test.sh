#!/usr/bin/env bash
# keepstate-snapshot end to end: build a file from JSON lines, verify and
# inspect it, dump a prefix (text and hex) and compare with the expected
# lines, copy it through dump | build, and check that one flipped byte makes
# verify exit 1 with a message and that bad input lines and usage errors get
# their exit codes. Registered with ctest by tests/CMakeLists.txt.
#
#   snapshot_tool_test.sh <path to keepstate-snapshot>
set -euo pipefail
tool="$(realpath "${1:?usage: snapshot_tool_test.sh <keepstate-snapshot>}")"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > in.jsonl <<'LINES'
{"key": "user/1", "value": "Ada"}
{"key": "user/2", "value": "Grace \u00e9\ud83d\ude00 \"q\""}

{"key": "cfg/theme", "value": "dark"}
{"key_hex": "00ff", "value_base64": "AAEC"}
{"key": "user/3", "value_hex": "deadbeef"}
{"key": "user/1", "value": "Ada Lovelace"}
LINES
# A value large enough for overflow pages.
printf '{"key": "blob", "value": "%s"}\n' "$(head -c 20000 /dev/zero | tr '\0' x)" >> in.jsonl

SOURCE_DATE_EPOCH=1700000000 "$tool" build s.ksnap --schema-version 3 < in.jsonl > build.out
grep -q '^s.ksnap: 7 lines, 6 entries, .* schema version 3$' build.out || fail "build: $(cat build.out)"

"$tool" verify s.ksnap > verify.out || fail "verify of a good file exited $?"
grep -q '^s.ksnap: ok (.* 6 entries, schema version 3)$' verify.out || fail "verify: $(cat verify.out)"

"$tool" inspect s.ksnap > inspect.out || fail "inspect exited $?"
for line in 'format          keepstate snapshot file, format 1' 'page size       4096' \
            'entries         6' 'schema version  3' 'store version   0' \
            'created         2023-11-14T22:13:20.000Z (1700000000000 ms)' 'verified        yes'; do
  grep -qxF "$line" inspect.out || fail "inspect lacks '$line': $(cat inspect.out)"
done
pages=$(sed -n 's/^pages  *//p' inspect.out)
size=$(stat -c %s s.ksnap)
[[ $size -eq $(( 64 + pages * (16 + 4096) + 32 )) ]] || fail "size $size for $pages pages"
grep -qxF "size            $size bytes" inspect.out || fail "inspect size: $(cat inspect.out)"

"$tool" dump s.ksnap --prefix user/ > dump.out
cat > dump.expected <<'LINES'
{"key": "user/1", "value": "Ada Lovelace"}
{"key": "user/2", "value": "Grace é😀 \"q\""}
{"key": "user/3", "value_hex": "deadbeef"}
LINES
diff -u dump.expected dump.out || fail "dump --prefix user/"

"$tool" dump s.ksnap --prefix user/ --hex > hex.out
cat > hex.expected <<'LINES'
{"key_hex": "757365722f31", "value_hex": "416461204c6f76656c616365"}
{"key_hex": "757365722f32", "value_hex": "477261636520c3a9f09f988020227122"}
{"key_hex": "757365722f33", "value_hex": "deadbeef"}
LINES
diff -u hex.expected hex.out || fail "dump --hex"

# dump | build copies every entry, binary ones included.
"$tool" dump s.ksnap | "$tool" build copy.ksnap > /dev/null
diff <("$tool" dump s.ksnap) <("$tool" dump copy.ksnap) || fail "dump | build changed entries"
[[ $("$tool" dump s.ksnap | wc -l) -eq 6 ]] || fail "dump lists $("$tool" dump s.ksnap | wc -l) entries"

# One flipped byte in a page: verify (and inspect, dump) exit 1 with a message.
cp s.ksnap bad.ksnap
offset=$(( 64 + 16 + 4096 + 16 + 200 ))  # page 1's bytes
old=$(od -An -tu1 -j "$offset" -N1 bad.ksnap | tr -d ' ')
printf "$(printf '\\%03o' $(( old ^ 0x20 )))" | dd of=bad.ksnap bs=1 seek="$offset" conv=notrunc 2>/dev/null
cmp -s s.ksnap bad.ksnap && fail "the byte did not change"
set +e
"$tool" verify bad.ksnap > /dev/null 2> verify.err; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "verify of a damaged file exited $rc"
grep -q 'corruption: snapshot file: page 1 .*hash mismatch' verify.err || fail "verify said: $(cat verify.err)"
set +e
"$tool" inspect bad.ksnap > inspect.out 2>/dev/null; rc_inspect=$?
"$tool" dump bad.ksnap > /dev/null 2>&1; rc_dump=$?
head -c 1000 s.ksnap > short.ksnap
"$tool" verify short.ksnap 2> short.err; rc_short=$?
set -e
[[ $rc_inspect -eq 1 && $rc_dump -eq 1 && $rc_short -eq 1 ]] || fail "inspect $rc_inspect, dump $rc_dump, truncated $rc_short"
grep -qxF 'verified        no' inspect.out || fail "inspect of a damaged file: $(cat inspect.out)"
grep -q truncated short.err || fail "truncated file: $(cat short.err)"

# A bad input line: exit 1 naming the line, nothing written.
set +e
printf '{"key": "a", "value": "b"}\n{"key": "a", "value": 5}\n' | "$tool" build nope.ksnap 2> bad-line.err; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "bad line exited $rc"
grep -q 'line 2: .*must be a JSON string' bad-line.err || fail "bad line said: $(cat bad-line.err)"
[[ ! -e nope.ksnap && ! -e nope.ksnap.tmp ]] || fail "a failed build wrote a file"

# Each malformed line is refused with its line number and the reason.
while IFS='|' read -r line reason; do
  set +e
  printf '%s\n' "$line" | "$tool" build nope.ksnap 2> bad-line.err; rc=$?
  set -e
  [[ $rc -eq 1 ]] || fail "'$line' exited $rc"
  grep -qF "line 1: " bad-line.err && grep -qF "$reason" bad-line.err || fail "'$line' said: $(cat bad-line.err)"
done <<'LINES'
{"key": "a", "value": "b",}|expected a string
{"key": "a", "value": "b"} x|unexpected text after the object
{"key": "a", "key_hex": "62", "value": "c"}|more than one key member
{"key": "a", "value": "\ud800"}|high surrogate without its low surrogate
{"key": "a", "value_base64": "A=A="}|not padded base64
{"key": "a", "value_hex": "abc"}|hex digits
{"key": "a", "valu": "b"}|unknown member "valu"
{"key": "", "value": "b"}|key is empty
{"value": "b"}|no key
["a"]|expected '{'
LINES
[[ ! -e nope.ksnap ]] || fail "a failed build wrote a file"

# Usage errors exit 2.
for args in "" "frobnicate x" "verify" "dump s.ksnap --bogus" "build x --schema-version q"; do
  set +e
  # shellcheck disable=SC2086
  "$tool" $args < /dev/null > /dev/null 2>&1; rc=$?
  set -e
  [[ $rc -eq 2 ]] || fail "'$args' exited $rc, expected 2"
done
echo "snapshot tool: ok"
