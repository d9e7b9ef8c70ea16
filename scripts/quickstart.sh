#!/usr/bin/env bash
# A first session with custodes: create a vault, register people who work with it, store a
# record, read it with a reason, and watch a read without one be refused and recorded.
set -euo pipefail
home=$(mktemp -d)/vault
run() { echo "\$ custodes $*"; custodes "$@" --home "$home"; echo; }
id=11010519491231002X   # a valid-format (checksummed) resident ID number, not a real person's
run init
run accessor add hotel-desk --org hotel-jinjiang --role registrar
run accessor add officer-li --org police-chaoyang --role investigator
run accessor add sergeant-wu --org police-chaoyang --role supervisor
run put identity --subject "$id" --as hotel-desk --purpose registration \
  --field name=张伟 --field id_number="$id" --field birth_date=1949-12-31 --field phone=+8613812345678
echo "# A read without a case is refused, and the refusal is itself recorded:"
custodes get identity --subject "$id" --as officer-li --purpose criminal_investigation --home "$home" || true
echo
case_id=$(custodes case open --as officer-li --purpose criminal_investigation --subject "$id" \
  --days 7 --json --home "$home" | python3 -c 'import json,sys; print(json.load(sys.stdin)["case"])')
echo "# officer-li opened case $case_id; a second person must approve it:"
run case approve "$case_id" --as sergeant-wu
run get identity --subject "$id" --as officer-li --purpose criminal_investigation --case "$case_id"
run policy explain get flights --as officer-li --purpose criminal_investigation
