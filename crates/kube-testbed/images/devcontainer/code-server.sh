#!/bin/sh
# Real code-server from the npm registry, built as REFERENCE §7 found to work offline of GitHub,
# into DEST/usr/lib/code-server with the launcher DEST/usr/bin/code-server: the paths of the
# code-server .deb that the code-server devcontainer feature installs. Run by `kube-testbed build`
# as `sh code-server.sh DEST CODE_SERVER_TGZ NODE_PREFIX RG`:
#   CODE_SERVER_TGZ  `npm pack code-server@VERSION`
#   NODE_PREFIX      the image's Node.js (bin/node, include/node headers): native modules are
#                    built with it and for it (it comes first on PATH; node-gyp reads its headers)
#   RG               Debian's ripgrep binary, in place of the one @vscode/ripgrep downloads
set -eu

DEST=$1
CODE_SERVER_TGZ=$2
NODE_PREFIX=$3
RG=$4

export PATH="$NODE_PREFIX/bin:$PATH"
export npm_config_nodedir="$NODE_PREFIX"
# node-pty runs `npx node-gyp`, which must not stop to ask.
export npm_config_yes=true
# Nothing global: the nested installs fail when they inherit a global prefix.
unset npm_config_global npm_config_prefix NPM_CONFIG_GLOBAL NPM_CONFIG_PREFIX

echo "node $(node --version) ($(command -v node)), npm $(npm --version)"
ROOT=$DEST/usr/lib/code-server
mkdir -p "$ROOT"
tar -xzf "$CODE_SERVER_TGZ" -C "$ROOT" --strip-components=1 --no-same-owner

# The package's own dependencies; argon2 (password hashing) compiles from source when its
# prebuilt download fails.
cd "$ROOT"
npm install --omit=dev --ignore-scripts
npm rebuild argon2

# VS Code's dependencies, with ripgrep in place (its postinstall stops when bin/ exists).
cd "$ROOT/lib/vscode"
npm install --omit=dev --ignore-scripts
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$RG" node_modules/@vscode/ripgrep/bin/rg
chmod 755 node_modules/@vscode/ripgrep/bin/rg
npm rebuild

# The three symlinks code-server's postinstall makes.
ln -sfn node_modules node_modules.asar
ln -sfn code-linux.sh bin/remote-cli/code-server
ln -sfn browser-linux.sh bin/helpers/browser.sh

# The built-in extensions' dependencies.
cd "$ROOT/lib/vscode/extensions"
npm install --omit=dev
# Broken links left by VS Code's pruning (the standalone release removes them too).
rm -rf node_modules/.bin

# The standalone release's layout: lib/node (the .deb bundles a copy of Node.js; here it is the
# image's own) and bin/code-server, which runs it on the package.
ln -sfn /usr/local/bin/node "$ROOT/lib/node"
mkdir -p "$ROOT/bin" "$DEST/usr/bin"
cat >"$ROOT/bin/code-server" <<'LAUNCHER'
#!/bin/sh
# Runs code-server with the Node.js it was built for.
exec /usr/lib/code-server/lib/node /usr/lib/code-server "$@"
LAUNCHER
cat >"$DEST/usr/bin/code-server" <<'LAUNCHER'
#!/usr/bin/env sh
exec /usr/lib/code-server/bin/code-server "$@"
LAUNCHER
chmod 755 "$ROOT/bin/code-server" "$DEST/usr/bin/code-server"
