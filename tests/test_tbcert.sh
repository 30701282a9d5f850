#!/usr/bin/env bash
# End-to-end test of the built tbcert: init-ca (with and without a passphrase), issue (ed25519
# and p256), show, verify, renew, and the error paths. What tbcert writes must pass
# `openssl verify` and GnuTLS's `certtool --verify`; expired and foreign-CA certificates must be
# rejected (time is moved with faketime). Usage: test_tbcert.sh PATH/TO/tbcert
set -uo pipefail

TBCERT=${1:?usage: test_tbcert.sh PATH/TO/tbcert}
work=$(mktemp -d "${TMPDIR:-/tmp}/tb_test_tbcert.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM HUP
cd "$work" || exit 1

passes=0
fails=0
pass() { passes=$((passes + 1)); }
fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}

# run CODE DESC CMD...: runs CMD with stdout in out, stderr in err, and wants exit code CODE.
run() {
  local want=$1 desc=$2 rc
  shift 2
  "$@" >out 2>err
  rc=$?
  if [ "$rc" -eq "$want" ]; then pass; else
    fail "$desc: exit $rc, wanted $want; stderr: $(head -3 err)"
  fi
}

# one_error PATTERN: stderr is exactly one line, "tbcert: ...", matching PATTERN.
one_error() {
  if [ "$(wc -l <err)" -eq 1 ] && grep -q "^tbcert: .*$1" err; then pass; else
    fail "wanted one error line matching '$1', got: $(cat err)"
  fi
}

# has FILE PATTERN DESC: FILE contains PATTERN.
has() {
  if grep -q -- "$2" "$1"; then pass; else fail "$3: '$2' not in $1: $(head -5 "$1")"; fi
}

same() {
  if [ "$1" = "$2" ]; then pass; else fail "$3: '$1' != '$2'"; fi
}

differ() {
  if [ "$1" != "$2" ]; then pass; else fail "$3: both '$1'"; fi
}

# ASan wants to be first in the library list; faketime's preload comes before it.
ft() {
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" faketime -f "$@"
}

mode() { stat -c %a "$1"; }
pubkey() { openssl x509 -in "$1" -noout -pubkey; }
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }

check_accepted() { # CA_DIR NODE_DIR DESC: both OpenSSL and GnuTLS accept the node certificate
  run 0 "$3: openssl verify (server)" openssl verify -x509_strict -purpose sslserver \
    -CAfile "$1/ca.crt" "$2/node.crt"
  run 0 "$3: openssl verify (client)" openssl verify -x509_strict -purpose sslclient \
    -CAfile "$1/ca.crt" "$2/node.crt"
  # GnuTLS, as the QUIC handshake uses it: both key purposes, its strictest profile.
  local purpose
  for purpose in 1.3.6.1.5.5.7.3.1 1.3.6.1.5.5.7.3.2; do
    run 0 "$3: certtool --verify ($purpose)" certtool --verify --verify-profile high \
      --verify-purpose "$purpose" --load-ca-certificate "$1/ca.crt" --infile "$2/node.crt"
    has out "Verified. The certificate is trusted" "$3: certtool output ($purpose)"
  done
  run 0 "$3: tbcert verify" "$TBCERT" verify --ca "$1" "$2/node.crt"
  has out ": OK: node" "$3: tbcert verify output"
}

test_help() {
  run 0 "--help" "$TBCERT" --help
  has out "init-ca" "--help"
  for cmd in init-ca issue show verify renew; do
    run 0 "$cmd --help" "$TBCERT" "$cmd" --help
    has out "usage: tbcert $cmd" "$cmd --help"
  done
  run 0 "issue --help" "$TBCERT" issue --help
  has out "node.key" "issue --help names the files"
  run 0 "help issue" "$TBCERT" help issue
  has out "usage: tbcert issue" "help issue"
  run 0 "--version" "$TBCERT" --version
  if grep -Eqx "tbcert [0-9]+\.[0-9]+\.[0-9]+" out; then pass; else fail "--version: $(cat out)"; fi
  run 2 "unknown top-level option" "$TBCERT" --verison
  one_error "unknown option '--verison' (see tbcert --help)"
  run 2 "misspelt option of a command" "$TBCERT" issue --ca ca1 --nmae n
  one_error "issue: unknown option '--nmae' (see tbcert issue --help)"
  run 2 "option without its value" "$TBCERT" init-ca --dir
  one_error "init-ca: option '--dir' needs a value (see tbcert init-ca --help)"
  run 2 "no command" "$TBCERT"
}

test_init_ca() {
  run 0 "init-ca" "$TBCERT" init-ca --dir ca1 --name mesh-1
  same "$(mode ca1/ca.key)" 600 "ca.key mode"
  run 0 "ca.key is an unencrypted key" openssl pkey -in ca1/ca.key -noout
  openssl x509 -in ca1/ca.crt -noout -text >ca.txt
  has ca.txt "CA:TRUE" "CA basicConstraints"
  has ca.txt "Certificate Sign" "CA keyUsage"
  has ca.txt "ED25519" "CA key type"
  run 2 "init-ca over an existing CA" "$TBCERT" init-ca --dir ca1
  one_error "ca1/ca.key: exists"
  local before
  before=$(sha256sum <ca1/ca.key)
  run 0 "init-ca --force" "$TBCERT" init-ca --dir ca1 --name mesh-1 --force
  differ "$before" "$(sha256sum <ca1/ca.key)" "init-ca --force writes a new key"

  printf 'correct horse battery\n' >pass
  printf 'wrong horse\n' >wrong
  run 0 "init-ca with passphrase" "$TBCERT" init-ca --dir ca2 --name mesh-1 --passphrase-file pass
  has ca2/ca.key "BEGIN ENCRYPTED PRIVATE KEY" "ca.key encrypted"
  same "$(mode ca2/ca.key)" 600 "encrypted ca.key mode"
  run 0 "openssl reads the encrypted key" openssl pkey -in ca2/ca.key -passin file:pass -noout
}

test_issue() {
  run 0 "issue ed25519" "$TBCERT" issue --ca ca1 --name node-a --region eu-west \
    --ip 127.0.0.10 --ip ::1 --dns node-a.example.net --out a
  same "$(mode a/node.key)" 600 "node.key mode"
  cmp -s a/ca.crt ca1/ca.crt && pass || fail "ca.crt copied beside node.crt"
  check_accepted ca1 a "ed25519"

  run 2 "issue with a wrong CA passphrase" "$TBCERT" issue --ca ca2 --name node-b \
    --region us-east --out b --passphrase-file wrong
  one_error "ca2/ca.key: wrong passphrase or corrupt key"
  [ ! -e b/node.key ] && pass || fail "nothing written after a wrong passphrase"
  run 2 "issue without the passphrase" "$TBCERT" issue --ca ca2 --name node-b \
    --region us-east --out b
  one_error "ca2/ca.key: key is encrypted"
  run 0 "issue p256" "$TBCERT" issue --ca ca2 --name node-b --region us-east --key-type p256 \
    --out b --passphrase-file pass
  openssl x509 -in b/node.crt -noout -text >b.txt
  has b.txt "prime256v1" "p256 key"
  check_accepted ca2 b "p256"
}

test_show() {
  run 0 "show" "$TBCERT" show a/node.crt
  has out "^name: *node-a$" "show name"
  has out "^region: *eu-west$" "show region"
  has out "^SANs: *DNS:node-a, URI:urn:tbmesh:node:node-a, URI:urn:tbmesh:region:eu-west, DNS:node-a.example.net, IP:127.0.0.10, IP:::1$" "show SANs"
  has out "^not before: *20" "show not before"
  has out "^not after: *20" "show not after"
  has out "^key type: *ed25519$" "show key type"
  has out "^fingerprint: SHA256:$(fingerprint a/node.crt)$" "show fingerprint = openssl's"
  run 0 "show p256" "$TBCERT" show b/node.crt
  has out "^key type: *p256$" "show p256 key type"
  run 0 "show CA" "$TBCERT" show ca1/ca.crt
  has out "^kind: *CA certificate$" "show CA kind"
}

test_rejections() {
  run 1 "verify with a foreign CA" "$TBCERT" verify --ca ca2 a/node.crt
  one_error "a/node.crt: rejected: .*foreign CA"
  run 2 "openssl verify rejects a foreign CA" openssl verify -CAfile ca2/ca.crt a/node.crt
  run 1 "certtool rejects a foreign CA" certtool --verify --load-ca-certificate ca2/ca.crt \
    --infile a/node.crt
  run 1 "certtool rejects a purpose the profile lacks (emailProtection)" certtool --verify \
    --verify-purpose 1.3.6.1.5.5.7.3.4 --load-ca-certificate ca1/ca.crt --infile a/node.crt
  run 1 "verify 100 days on" ft '+100d' "$TBCERT" verify --ca ca1 a/node.crt
  one_error "a/node.crt: rejected: expired"
  run 1 "verify the CA certificate as a node" "$TBCERT" verify --ca ca1 ca1/ca.crt
  one_error "not a node certificate"
  run 0 "a certificate made by openssl" openssl req -x509 -newkey ed25519 -nodes -days 1 \
    -subj /CN=stranger -keyout stranger.key -out stranger.crt
  run 1 "verify a certificate outside the profile" "$TBCERT" verify --ca ca1 stranger.crt
  one_error "stranger.crt: rejected: not a tbmesh certificate: "
  run 2 "show a certificate outside the profile" "$TBCERT" show stranger.crt
  one_error "stranger.crt: not a tbmesh certificate: "

  # A CA made 400 days ago issues a 90-day certificate 200 days ago: expired today.
  run 0 "init-ca in the past" ft '-400d' "$TBCERT" init-ca --dir ca3 --name mesh-3
  run 0 "issue in the past" ft '-200d' "$TBCERT" issue --ca ca3 --name old --region r1 --out old
  run 1 "verify an expired certificate" "$TBCERT" verify --ca ca3 old/node.crt
  one_error "old/node.crt: rejected: expired"
  run 2 "openssl verify rejects it too" openssl verify -CAfile ca3/ca.crt old/node.crt
  run 1 "verify before it was valid" ft '-300d' "$TBCERT" verify --ca ca3 old/node.crt
  one_error "old/node.crt: rejected: not yet valid"
  run 0 "verify while it was valid" ft '-150d' "$TBCERT" verify --ca ca3 old/node.crt
}

test_renew() {
  local key_before pub_before end_before serial_before sans_before
  key_before=$(sha256sum <a/node.key)
  pub_before=$(pubkey a/node.crt)
  end_before=$(openssl x509 -in a/node.crt -noout -enddate)
  serial_before=$(openssl x509 -in a/node.crt -noout -serial)
  sans_before=$(openssl x509 -in a/node.crt -noout -ext subjectAltName)
  run 0 "renew" "$TBCERT" renew --ca ca1 --in a --days 30
  same "$(pubkey a/node.crt)" "$pub_before" "renew keeps the public key"
  same "$(openssl pkey -in a/node.key -pubout)" "$pub_before" "node.key matches the new cert"
  same "$(sha256sum <a/node.key)" "$key_before" "renew leaves node.key alone"
  differ "$(openssl x509 -in a/node.crt -noout -enddate)" "$end_before" "renew changes notAfter"
  differ "$(openssl x509 -in a/node.crt -noout -serial)" "$serial_before" "renew: new serial"
  same "$(openssl x509 -in a/node.crt -noout -ext subjectAltName)" "$sans_before" "renew SANs"
  same "$(ls a)" "$(printf 'ca.crt\nnode.crt\nnode.key')" "renew leaves no temporary file"
  check_accepted ca1 a "renewed"

  run 0 "renew an expired certificate" "$TBCERT" renew --ca ca3 --in old
  run 0 "renewed certificate verifies" "$TBCERT" verify --ca ca3 old/node.crt
  run 2 "renew with another CA" "$TBCERT" renew --ca ca2 --in a --passphrase-file pass
  one_error "a/node.crt: not issued by this CA"
}

test_revoke() {
  run 0 "issue rv1" "$TBCERT" issue --ca ca1 --name rv1 --region r --out rv1
  run 0 "issue rv2" "$TBCERT" issue --ca ca1 --name rv2 --region r --out rv2 --seconds 600
  has out "rv2.*valid until" "issue --seconds"
  run 0 "revoke rv1" "$TBCERT" revoke --ca ca1 --cert rv1/node.crt
  has out "CRL number 1, 1 revoked" "first list"
  [ "$(mode ca1/revoked.crl)" = 644 ] && pass || fail "revoked.crl mode $(mode ca1/revoked.crl)"
  openssl crl -in ca1/revoked.crl -CAfile ca1/ca.crt -noout 2>err && pass ||
    fail "openssl does not verify the CRL: $(cat err)"
  if openssl verify -crl_check -CAfile ca1/ca.crt -CRLfile ca1/revoked.crl rv1/node.crt \
    >/dev/null 2>&1; then fail "openssl accepts the revoked rv1"; else pass; fi
  openssl verify -crl_check -CAfile ca1/ca.crt -CRLfile ca1/revoked.crl rv2/node.crt \
    >/dev/null 2>&1 && pass || fail "openssl refuses rv2, which is not revoked"
  run 0 "revoke rv2 as well" "$TBCERT" revoke --ca ca1 --cert rv2/node.crt --days 7
  has out "CRL number 2, 2 revoked" "the list grows and its number with it"
  has <(openssl crl -in ca1/revoked.crl -noout -text) "CRL Number: *$" "CRL number extension"
  run 2 "revoke a certificate of another CA" "$TBCERT" revoke --ca ca1 --cert old/node.crt
  one_error "old/node.crt: not revoked: not issued by this CA"
  run 0 "list unchanged after a refusal" openssl crl -in ca1/revoked.crl -noout -crlnumber
  has out "crlNumber=0x02" "refused revoke writes nothing"
  echo "garbage" >bad.crl
  run 2 "a corrupt existing list" "$TBCERT" revoke --ca ca1 --cert rv1/node.crt --crl bad.crl
  one_error "bad.crl: not a DER X.509 CRL"
}

test_overwrite() {
  local key_before
  key_before=$(sha256sum <a/node.key)
  run 2 "issue over an existing key" "$TBCERT" issue --ca ca1 --name node-a --region eu-west \
    --out a
  one_error "a/node.key: exists"
  same "$(sha256sum <a/node.key)" "$key_before" "existing node.key untouched"
  run 0 "issue --force" "$TBCERT" issue --ca ca1 --name node-a --region eu-west --out a --force
  differ "$(sha256sum <a/node.key)" "$key_before" "issue --force writes a new key"
  same "$(mode a/node.key)" 600 "forced node.key mode"
}

test_bad_input() {
  sed '2s/^..../!!!!/' a/node.crt >corrupt.crt
  run 2 "show a corrupt PEM" "$TBCERT" show corrupt.crt
  one_error "corrupt.crt: not a PEM certificate"
  run 2 "verify a corrupt PEM" "$TBCERT" verify --ca ca1 corrupt.crt
  one_error "corrupt.crt: not a PEM certificate"
  mkdir -p badca && cp ca1/ca.crt badca/ && sed '2s/^..../AAAA/' ca1/ca.key >badca/ca.key
  run 2 "issue with a corrupt CA key" "$TBCERT" issue --ca badca --name n --region r --out n1
  one_error "badca/ca.key: "
  printf 'junk\n' >badca/ca.key
  run 2 "issue with a non-PEM CA key" "$TBCERT" issue --ca badca --name n --region r --out n1
  one_error "badca/ca.key: not a PEM private key"
  mkdir -p mix && cp a/node.crt mix/ && cp b/node.key mix/
  run 2 "renew with a key of another node" "$TBCERT" renew --ca ca1 --in mix
  one_error "mix/node.key: does not belong to mix/node.crt"
  run 2 "show a missing file" "$TBCERT" show missing.crt
  one_error "missing.crt: No such file"
  run 2 "verify with a missing CA" "$TBCERT" verify --ca nowhere a/node.crt
  one_error "nowhere/ca.crt: No such file"
  : >empty
  run 2 "empty passphrase file" "$TBCERT" init-ca --dir ca9 --passphrase-file empty
  one_error "empty: empty passphrase"

  for days in 0 36501 abc -5 1.5 "" " 7" 18446744073709551617; do
    run 2 "--days '$days'" "$TBCERT" issue --ca ca1 --name n --region r --out n1 --days "$days"
    one_error "--days"
  done
  run 2 "--days 0" "$TBCERT" init-ca --dir ca9 --days 0
  one_error "--days: 0 is outside 1..36500$"
  run 2 "--days -5" "$TBCERT" renew --ca ca1 --in a --days -5
  one_error "--days: '-5' is not a whole number$"
  run 0 "--days 36500" "$TBCERT" issue --ca ca1 --name n --region r --out n1 --days 36500
  run 2 "bad node name" "$TBCERT" issue --ca ca1 --name Node_A --region r --out n2
  one_error "--name Node_A"
  run 2 "bad region" "$TBCERT" issue --ca ca1 --name n --region -r --out n2
  one_error "--region -r"
  run 2 "bad IP" "$TBCERT" issue --ca ca1 --name n --region r --ip 10.1.2 --out n2
  one_error "IP address \"10.1.2\""
  run 2 "bad DNS" "$TBCERT" issue --ca ca1 --name n --region r --dns 'a b' --out n2
  one_error "DNS name \"a b\""
  run 2 "bad key type" "$TBCERT" issue --ca ca1 --name n --region r --key-type rsa --out n2
  one_error "--key-type rsa"
  run 2 "missing --out" "$TBCERT" issue --ca ca1 --name n --region r
  one_error "--out is required"
  run 2 "unknown option" "$TBCERT" show --bogus a/node.crt
  one_error "--bogus"
  run 2 "option of another command" "$TBCERT" verify --ca ca1 --days 3 a/node.crt
  one_error "--days does not apply"
  run 2 "show without a file" "$TBCERT" show
  one_error "needs exactly one FILE"
  run 2 "unknown command" "$TBCERT" frobnicate
  one_error "unknown command frobnicate"
  [ ! -e n2 ] && pass || fail "nothing written after bad arguments"
}

test_help
test_init_ca
test_issue
test_show
test_rejections
test_renew
test_revoke
test_overwrite
test_bad_input

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
