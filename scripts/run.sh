#!/bin/sh
# make run: starts crmd on the embedded SQLite database var/crmd.db and
# prints the three exports that make the reference's curl calls work, and
# the link that opens the board signed in.
# On a new database it creates an app first; its key is kept (mode 600) in
# var/credentials.env so later runs print it again with a fresh token.
set -eu
# Everything made here is the owner's alone, whatever the caller's umask:
# var/ (0700), which holds the database and the credentials, and the
# credentials (0600). Under umask 000 var/ was 0777, where anyone could
# replace or link the files in it.
umask 077
bin=${1:-build/crmd}
db=${CRMD_DB:-sqlite:var/crmd.db}
listen=${CRMD_LISTEN:-127.0.0.1:8080}
creds=var/credentials.env
mkdir -p var
# And a var/ an earlier run made under a looser umask (0777 under umask
# 000, before this one set its own), which mkdir -p leaves as it is.
chmod go-rwx var

key=""
if [ -f "$creds" ]; then
    key=$(sed -n 's/^export BLOCKS_API_KEY=//p' "$creds")
fi
if [ -n "$key" ] && token=$("$bin" token issue --app "$key" --db "$db" 2>/dev/null); then
    :
else
    # Written beside the file and renamed over it once complete: a failed
    # app create (a database crmd refuses) emptied the file, and the key of
    # the app made earlier with it.
    "$bin" app create "make-run" --db "$db" > "$creds.new"
    mv -f "$creds.new" "$creds"
    key=$(sed -n 's/^export BLOCKS_API_KEY=//p' "$creds")
    token=$(sed -n 's/^export BLOCKS_AUTH_TOKEN=//p' "$creds")
fi

echo "crmd: paste these lines into your shell, then try the reference's curl calls:"
echo "export BLOCKS_API_URL=http://$listen"
echo "export BLOCKS_API_KEY=$key"
echo "export BLOCKS_AUTH_TOKEN=$token"
echo
# The credentials ride in the fragment, which a browser never sends: the
# board (docs/board.md) keeps them for the tab and clears the address bar.
echo "crmd: open the pipeline board, signed in:"
echo "http://$listen/#app=$key&token=$token"
echo
exec "$bin" serve --listen "$listen" --db "$db"
