#!/usr/bin/env bash
# Re-fetches the dashboard's vendored front-end libraries from the npm registry (`npm pack`,
# no install, no build) into dashboard/static/vendor/, each with its LICENSE.
# Bump a version here, run `bash dashboard/vendor/update.sh`, look at the pages, commit.
set -euo pipefail

XTERM=6.0.0
XTERM_FIT=0.11.0
UPLOT=1.6.32

here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/../static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack NPM_NAME VERSION DIR
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    local tgz
    tgz="$(ls "$work"/*.tgz)"
    mkdir -p "$work/$3"
    tar xzf "$tgz" -C "$work/$3" --strip-components=1
    rm -f "$tgz"
}

unpack @xterm/xterm "$XTERM" xterm
unpack @xterm/addon-fit "$XTERM_FIT" xterm-addon-fit
unpack uplot "$UPLOT" uplot

rm -rf "$dest"
mkdir -p "$dest/xterm" "$dest/xterm-addon-fit" "$dest/uplot"
cp "$work/xterm/lib/xterm.mjs" "$work/xterm/css/xterm.css" "$work/xterm/LICENSE" "$dest/xterm/"
cp "$work/xterm-addon-fit/lib/addon-fit.mjs" "$work/xterm-addon-fit/LICENSE" "$dest/xterm-addon-fit/"
cp "$work/uplot/dist/uPlot.esm.js" "$work/uplot/dist/uPlot.min.css" "$work/uplot/LICENSE" "$dest/uplot/"
# the .mjs files name their source maps, which are not shipped
sed -i '/^\/\/# sourceMappingURL=/d' "$dest"/xterm/xterm.mjs "$dest"/xterm-addon-fit/addon-fit.mjs
cat > "$dest/VERSIONS" <<V
@xterm/xterm $XTERM (MIT)
@xterm/addon-fit $XTERM_FIT (MIT)
uplot $UPLOT (MIT)
V
echo "vendored into $dest:"
cat "$dest/VERSIONS"
