#!/bin/sh
# envbuilder stand-in: A SIMULATION OF ENVBUILDER, USED ONLY BY TESTS (kube-testbed's test images).
#
# It is installed as /.envbuilder/bin/envbuilder (the real image's entrypoint path) in an image that
# already holds everything devcontainer.json asks for. It BUILDS NO LAYERS and runs no kaniko: the
# image is prebuilt, and the log says so. What it honours is the contract the project relies on
# (REFERENCE §2), in the real envbuilder's order and with its log markers:
#   - ENVBUILDER_GIT_URL (optional `#refs/heads/BRANCH`), ENVBUILDER_GIT_USERNAME/_PASSWORD,
#     ENVBUILDER_GIT_CLONE_DEPTH, ENVBUILDER_GIT_CLONE_SINGLE_BRANCH: a real `git clone`, unless the
#     workspace folder already holds a repository ("The repository already exists!");
#   - ENVBUILDER_WORKSPACE_FOLDER (default ENVBUILDER_WORKSPACE_BASE_DIR, /workspaces, plus the
#     repository's name, or /workspaces/empty without a URL);
#   - ENVBUILDER_DEVCONTAINER_DIR / ENVBUILDER_DEVCONTAINER_JSON_PATH (relative to the workspace
#     folder unless absolute), else .devcontainer/devcontainer.json, devcontainer.json, then
#     .devcontainer/*/devcontainer.json; JSONC (comments, trailing commas) is accepted;
#   - containerEnv and remoteEnv (plus ENVBUILDER=true, DEVCONTAINER=true, DEVCONTAINER_CONFIG),
#     exported in sorted key order with envbuilder's substitutions: ${containerWorkspaceFolder},
#     ${localWorkspaceFolder} (both the workspace folder), their ...Basename forms, and
#     ${env:X} / ${localEnv:X} / ${containerEnv:X} / ${X} (with an optional `:default`), all read
#     from this process's environment as it is at that point; anything else becomes empty;
#   - the user: containerUser, else remoteUser (envbuilder's USER after features), else root; the
#     workspace (when cloned) and the user's home are chowned to it;
#   - lifecycle hooks as that user (setpriv --init-groups) in the workspace folder, HOME set (and
#     USER, which envbuilder leaves as it is), every ENVBUILDER_* variable unset: onCreateCommand (first start of the container only, marked by
#     /.envbuilder/built), updateContentCommand, postCreateCommand, postStartCommand. A string runs
#     as `/bin/sh -c STRING`, an array is executed directly, an object runs its entries in parallel.
#     As in envbuilder, a failing hook is logged ("Failed to run ...") and skips the later hooks but
#     does not stop the start-up;
#   - the init: ENVBUILDER_INIT_COMMAND (default /bin/sh) with ENVBUILDER_INIT_ARGS (split like a
#     shell command line; default `-c "$ENVBUILDER_INIT_SCRIPT"`, the script defaulting to
#     `sleep infinity`), exec'd through setpriv as the user (its groups initialised), with HOME
#     and USER for the user, in the workspace folder, so it replaces this process (PID 1 in a
#     container).
# Fatal failures print `error: <what>` and exit 1, as envbuilder does. Options about building or
# caching layers (ENVBUILDER_CACHE_REPO, ENVBUILDER_PUSH_IMAGE, ENVBUILDER_LAYER_CACHE_DIR, ...) are
# reported as ignored; devcontainer.json's image, build and features are not acted on (the image
# already holds them); /etc/environment is not read.
#
# It needs sh, git, setpriv (util-linux), getent, chown, date and node (for JSON).

set -u

VERSION=v1.3.0-standin
MAGIC_DIR=/.envbuilder
STAGE=0
STAGE_START=0

log() { printf '%s\n' "$*" >&2; }
fail() {
    log "error: $*"
    exit 1
}
now_ms() { date +%s%3N; }
start_stage() {
    STAGE=$((STAGE + 1))
    STAGE_START=$(now_ms)
    log "#$STAGE: $*"
}
end_stage() {
    elapsed=$(($(now_ms) - STAGE_START))
    log "#$STAGE: $* [$((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000)))s]"
}

# ---- options -----------------------------------------------------------------------------------
GIT_URL=${ENVBUILDER_GIT_URL:-}
GIT_USERNAME=${ENVBUILDER_GIT_USERNAME:-}
GIT_PASSWORD=${ENVBUILDER_GIT_PASSWORD:-}
CLONE_DEPTH=${ENVBUILDER_GIT_CLONE_DEPTH:-0}
SINGLE_BRANCH=${ENVBUILDER_GIT_CLONE_SINGLE_BRANCH:-false}
WORKSPACE_BASE=${ENVBUILDER_WORKSPACE_BASE_DIR:-/workspaces}
WORKSPACE_FOLDER=${ENVBUILDER_WORKSPACE_FOLDER:-}
DEVCONTAINER_DIR=${ENVBUILDER_DEVCONTAINER_DIR:-}
DEVCONTAINER_JSON_PATH=${ENVBUILDER_DEVCONTAINER_JSON_PATH:-}
FALLBACK_IMAGE=${ENVBUILDER_FALLBACK_IMAGE:-}
INIT_SCRIPT=${ENVBUILDER_INIT_SCRIPT:-sleep infinity}
INIT_COMMAND=${ENVBUILDER_INIT_COMMAND:-/bin/sh}
INIT_ARGS=${ENVBUILDER_INIT_ARGS:-}

IGNORED=
for name in CACHE_REPO PUSH_IMAGE LAYER_CACHE_DIR BASE_IMAGE_CACHE_DIR DOCKER_CONFIG_BASE64 \
    SSL_CERT_BASE64 SETUP_SCRIPT REMOTE_REPO_BUILD_MODE EXPORT_ENV_FILE GET_CACHED_IMAGE; do
    if [ -n "$(printenv "ENVBUILDER_$name" || true)" ]; then
        IGNORED="$IGNORED ENVBUILDER_$name"
    fi
done

# Every ENVBUILDER_* variable goes now, so no hook, substitution or init process sees one (the
# values needed later are in the shell variables above).
for name in $(env | sed -n 's/^\(ENVBUILDER_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$name"
done

NODE=$(command -v node || echo /usr/local/bin/node)
[ -x "$NODE" ] || fail "the envbuilder stand-in needs node (for devcontainer.json), found none"

# The helper every JSON or quoting job goes through. Modes:
#   argv ARG...                 prints the arguments as Go's %q prints a []string
#   split STRING                prints STRING split like a shell command line, as quoted sh words
#   repo-name URL               prints the URL's last path segment without .git (empty if none)
#   devcontainer FILE WS OUT    parses FILE (JSONC) and writes OUT/settings.sh (user names),
#                               OUT/env.sh (exports) and one OUT/<hook> script per lifecycle hook
# shellcheck disable=SC2016 # JavaScript, not shell: nothing in it is meant to expand
HELPER='
"use strict";
const fs = require("fs");
const path = require("path");
const [mode, ...args] = process.argv.slice(1);
const q = (s) => "\x27" + String(s).replace(/\x27/g, "\x27\\\x27\x27") + "\x27";

function stripJsonc(text) {
  let out = "";
  let i = 0;
  const n = text.length;
  const skipBlank = (j) => {
    for (;;) {
      while (j < n && /\s/.test(text[j])) j++;
      if (text.startsWith("//", j)) { while (j < n && text[j] !== "\n") j++; continue; }
      if (text.startsWith("/*", j)) { const e = text.indexOf("*/", j + 2); j = e < 0 ? n : e + 2; continue; }
      return j;
    }
  };
  while (i < n) {
    const c = text[i];
    if (c === "\"") {
      let j = i + 1;
      while (j < n && text[j] !== "\"") j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (text.startsWith("//", i) || text.startsWith("/*", i)) {
      const j = skipBlank(i);
      out += " ";
      i = j;
    } else if (c === ",") {
      const j = skipBlank(i + 1);
      if (text[j] !== "}" && text[j] !== "]") out += ",";
      i = i + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function substitute(value, ws, env) {
  return String(value).replace(/\$\{([^}]*)\}/g, (_, expr) => {
    const parts = expr.split(":");
    if (parts.length === 1) {
      if (expr === "localWorkspaceFolder" || expr === "containerWorkspaceFolder") return ws;
      if (expr === "localWorkspaceFolderBasename" || expr === "containerWorkspaceFolderBasename") return path.basename(ws);
      return env[expr] ?? "";
    }
    if (["env", "localEnv", "containerEnv"].includes(parts[0])) {
      if (env[parts[1]] !== undefined) return env[parts[1]];
      if (parts.length === 3) return parts[2];
    }
    return "";
  });
}

function hookScript(name, hook) {
  const run = (command) => Array.isArray(command)
    ? command.map(q).join(" ")
    : "/bin/sh -c " + q(command);
  const check = (command) => {
    if (Array.isArray(command) && (command.length === 0 || command.some((a) => typeof a !== "string"))) {
      throw new Error(name + ": a command array must hold strings only");
    }
    if (!Array.isArray(command) && typeof command !== "string") {
      throw new Error(name + ": a command must be a string, an array or an object");
    }
  };
  if (typeof hook === "object" && !Array.isArray(hook)) {
    const lines = ["pids="];
    for (const command of Object.values(hook)) {
      check(command);
      lines.push(run(command) + " &", "pids=\"$pids $!\"");
    }
    lines.push("rc=0", "for pid in $pids; do wait \"$pid\" || rc=$?; done", "exit \"$rc\"");
    return lines.join("\n") + "\n";
  }
  check(hook);
  return "exec " + run(hook) + "\n";
}

function splitShellWords(s) {
  const words = [];
  let word = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\x27") {
      const e = s.indexOf("\x27", i + 1);
      if (e < 0) throw new Error("unterminated single quote");
      word = (word ?? "") + s.slice(i + 1, e);
      i = e;
    } else if (c === "\"") {
      let j = i + 1;
      let w = "";
      for (; j < s.length && s[j] !== "\""; j++) {
        if (s[j] === "\\" && j + 1 < s.length && "$`\"\\\n".includes(s[j + 1])) j++;
        w += s[j];
      }
      if (j >= s.length) throw new Error("unterminated double quote");
      word = (word ?? "") + w;
      i = j;
    } else if (c === "\\" && i + 1 < s.length) {
      word = (word ?? "") + s[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) { words.push(word); word = null; }
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

try {
  if (mode === "argv") {
    console.log("[" + args.map((a) => JSON.stringify(a)).join(" ") + "]");
  } else if (mode === "split") {
    console.log(splitShellWords(args[0]).map(q).join(" "));
  } else if (mode === "repo-name") {
    let p = args[0];
    try { p = new URL(args[0]).pathname; } catch { p = p.replace(/^[^@]*@[^:]*:/, ""); }
    const base = path.posix.basename(p);
    console.log(base === "/" || base === "." ? "" : base.replace(/\.git$/, ""));
  } else if (mode === "devcontainer") {
    const [file, ws, out] = args;
    const spec = JSON.parse(stripJsonc(fs.readFileSync(file, "utf8")));
    if (spec === null || typeof spec !== "object" || Array.isArray(spec)) throw new Error("not a JSON object");
    const str = (v) => (typeof v === "string" ? v : "");
    fs.writeFileSync(path.join(out, "settings.sh"),
      "CONTAINER_USER=" + q(str(spec.containerUser)) + "\nREMOTE_USER=" + q(str(spec.remoteUser)) + "\n");
    const env = { ...process.env };
    const exports = [];
    const containerEnv = { ...(spec.containerEnv || {}), ENVBUILDER: "true", DEVCONTAINER: "true", DEVCONTAINER_CONFIG: file };
    for (const map of [containerEnv, spec.remoteEnv || {}]) {
      for (const key of Object.keys(map).sort()) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
          process.stderr.write("envbuilder stand-in: skipping the variable " + JSON.stringify(key) + " (not a shell name)\n");
          continue;
        }
        const value = substitute(map[key] ?? "", ws, env);
        env[key] = value;
        exports.push("export " + key + "=" + q(value));
      }
    }
    fs.writeFileSync(path.join(out, "env.sh"), exports.join("\n") + "\n");
    for (const hook of ["onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand"]) {
      const value = spec[hook];
      const empty = value === undefined || value === null || value === "" ||
        (Array.isArray(value) && value.length === 0) ||
        (typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0);
      if (!empty) fs.writeFileSync(path.join(out, hook), hookScript(hook, value));
    }
  } else {
    throw new Error("unknown mode " + mode);
  }
} catch (e) {
  process.stderr.write(e.message + "\n");
  process.exit(1);
}
'
helper() { "$NODE" -e "$HELPER" "$@"; }

WORK=$(mktemp -d) || fail "create a temporary folder"
trap 'rm -rf "$WORK"' EXIT

log "envbuilder $VERSION - Build development environments from repositories in a container"
for name in $IGNORED; do
    log "envbuilder stand-in: ignoring $name (no layers are built or cached)"
done

# ---- the workspace -----------------------------------------------------------------------------
REPO_URL=${GIT_URL%%#*}
BRANCH=
case $GIT_URL in
    *'#'*)
        BRANCH=${GIT_URL#*#}
        BRANCH=${BRANCH#refs/heads/}
        ;;
esac
if [ -z "$WORKSPACE_FOLDER" ]; then
    name=
    if [ -n "$REPO_URL" ]; then
        name=$(helper repo-name "$REPO_URL") || fail "parse the repository URL $REPO_URL"
    fi
    WORKSPACE_FOLDER=$WORKSPACE_BASE/${name:-empty}
fi

CLONED=false
if [ -n "$REPO_URL" ]; then
    start_stage "📦 Cloning $REPO_URL to $WORKSPACE_FOLDER..."
    if [ -e "$WORKSPACE_FOLDER/.git" ]; then
        end_stage "📦 The repository already exists!"
    else
        set -- clone
        [ "$CLONE_DEPTH" -gt 0 ] 2>/dev/null && set -- "$@" --depth "$CLONE_DEPTH"
        [ "$SINGLE_BRANCH" = true ] && set -- "$@" --single-branch
        [ -n "$BRANCH" ] && set -- "$@" --branch "$BRANCH"
        # Credentials go through an askpass helper reading the environment of git alone: they never
        # appear on a command line or in the URL.
        askpass=$WORK/askpass
        # shellcheck disable=SC2016 # the helper expands these when git runs it
        printf '%s\n' '#!/bin/sh' \
            'case $1 in Username*) printf "%s\n" "$STANDIN_GIT_USERNAME" ;; *) printf "%s\n" "$STANDIN_GIT_PASSWORD" ;; esac' \
            >"$askpass"
        chmod 700 "$askpass"
        mkdir -p "$(dirname "$WORKSPACE_FOLDER")" || fail "create $(dirname "$WORKSPACE_FOLDER")"
        STANDIN_GIT_USERNAME=$GIT_USERNAME STANDIN_GIT_PASSWORD=$GIT_PASSWORD \
            GIT_ASKPASS=$askpass GIT_TERMINAL_PROMPT=0 \
            git "$@" -- "$REPO_URL" "$WORKSPACE_FOLDER" 2>&1 | sed "s/^/#$STAGE: /" >&2
        # The pipeline's status is sed's: whether the clone worked is seen in the folder.
        if [ ! -e "$WORKSPACE_FOLDER/.git" ]; then
            log "Failed to clone repository: git clone $REPO_URL failed"
            log "Falling back to the default image..."
            [ -n "$FALLBACK_IMAGE" ] || fail "git clone $REPO_URL failed: no fallback image has been specified"
        else
            CLONED=true
            end_stage "📦 Cloned repository!"
        fi
    fi
fi

# ---- devcontainer.json -------------------------------------------------------------------------
log "No Dockerfile specified, looking for a devcontainer.json..."
abs() {
    case $2 in
        /*) printf '%s\n' "$2" ;;
        *) printf '%s/%s\n' "$1" "$2" ;;
    esac
}
DEVCONTAINER_JSON=
if [ -n "$DEVCONTAINER_DIR$DEVCONTAINER_JSON_PATH" ]; then
    dir=$(abs "$WORKSPACE_FOLDER" "${DEVCONTAINER_DIR:-.devcontainer}")
    DEVCONTAINER_JSON=$(abs "$dir" "${DEVCONTAINER_JSON_PATH:-devcontainer.json}")
else
    for candidate in "$WORKSPACE_FOLDER/.devcontainer/devcontainer.json" \
        "$WORKSPACE_FOLDER/devcontainer.json" "$WORKSPACE_FOLDER"/.devcontainer/*/devcontainer.json; do
        if [ -f "$candidate" ]; then
            DEVCONTAINER_JSON=$candidate
            break
        fi
    done
fi
CONTAINER_USER=
REMOTE_USER=
if [ -n "$DEVCONTAINER_JSON" ] && [ -f "$DEVCONTAINER_JSON" ]; then
    log "Building in Devcontainer mode using ${DEVCONTAINER_JSON#"$WORKSPACE_FOLDER"}"
    why=$(helper devcontainer "$DEVCONTAINER_JSON" "$WORKSPACE_FOLDER" "$WORK" 2>&1) ||
        fail "parse devcontainer.json $DEVCONTAINER_JSON: $why"
    [ -n "$why" ] && log "$why"
    # shellcheck source=/dev/null
    . "$WORK/settings.sh"
else
    log "Failed to locate devcontainer.json: can't find devcontainer.json, is it a correct spec?"
    log "Falling back to the default image..."
    [ -n "$FALLBACK_IMAGE" ] || fail "no fallback image has been specified"
    DEVCONTAINER_JSON=
    printf 'export ENVBUILDER=true\n' >"$WORK/env.sh"
fi

start_stage "🏗️ Building image..."
log "envbuilder stand-in: the image is prebuilt; no layers were built"
end_stage "🏗️ Built image!"

# containerEnv and remoteEnv, substituted, for the hooks and the init alike.
# shellcheck source=/dev/null
. "$WORK/env.sh"

# ---- the user ----------------------------------------------------------------------------------
USER_NAME=${CONTAINER_USER:-$REMOTE_USER}
if [ -z "$USER_NAME" ]; then
    log "#$STAGE: no user specified, using root"
    USER_NAME=root
fi
entry=$(getent passwd "$USER_NAME") || fail "update user: find user $USER_NAME: unknown user"
OLD_IFS=$IFS
IFS=:
# shellcheck disable=SC2086 # split on purpose: name:password:uid:gid:gecos:home:shell
set -- $entry
IFS=$OLD_IFS
USER_NAME=$1
USER_UID=$3
USER_GID=$4
USER_HOME=$6

if [ "$CLONED" = true ]; then
    start_stage "🔄 Updating the ownership of the workspace..."
    if chown -R "$USER_UID:$USER_GID" "$WORKSPACE_FOLDER"; then
        end_stage "👤 Updated the ownership of the workspace!"
    else
        end_stage "⚠️ Failed to the ownership of the workspace, you may need to fix this manually!"
    fi
fi
if [ "$USER_UID" != 0 ] && [ -d "$USER_HOME" ]; then
    start_stage "🔄 Updating ownership of $USER_HOME..."
    if chown -R "$USER_UID:$USER_GID" "$USER_HOME"; then
        end_stage "🏡 Updated ownership of $USER_HOME!"
    else
        end_stage "⚠️ Failed to update ownership of $USER_HOME, you may need to fix this manually!"
    fi
fi

mkdir -p "$WORKSPACE_FOLDER" || fail "create workspace folder: $WORKSPACE_FOLDER"
cd "$WORKSPACE_FOLDER" || fail "change directory: $WORKSPACE_FOLDER"
export HOME="$USER_HOME" USER="$USER_NAME"

# as_user COMMAND...: runs COMMAND as the user (directly when this already is the user).
as_user() {
    if [ "$(id -u)" = "$USER_UID" ]; then
        "$@"
    else
        setpriv --reuid "$USER_UID" --regid "$USER_GID" --init-groups "$@"
    fi
}

# ---- lifecycle hooks ---------------------------------------------------------------------------
run_hook() {
    if [ ! -f "$WORK/$1" ]; then
        [ "$1" = postStartCommand ] || log "=== No $1 script specified"
        return 0
    fi
    log "=== Running $1 as the \"$USER_NAME\" user..."
    # The script is handed over as an argument: the user cannot read this process's folder.
    as_user /bin/sh -c "$(cat "$WORK/$1")" "$1"
    status=$?
    if [ "$status" != 0 ]; then
        log "Failed to run $1: exit status $status"
        return 1
    fi
}
first_start=true
[ -e "$MAGIC_DIR/built" ] && first_start=false
if { [ "$first_start" = false ] || run_hook onCreateCommand; } &&
    run_hook updateContentCommand && run_hook postCreateCommand; then
    run_hook postStartCommand || true
fi
if [ "$first_start" = true ]; then
    { mkdir -p "$MAGIC_DIR" && : >"$MAGIC_DIR/built"; } || fail "create magic file: $MAGIC_DIR/built"
fi

# ---- the init ----------------------------------------------------------------------------------
if [ -n "$INIT_ARGS" ]; then
    words=$(helper split "$INIT_ARGS") || fail "parse init args: $INIT_ARGS"
    eval "set -- $words"
else
    set -- -c "$INIT_SCRIPT"
fi
log "=== Running init command as user \"$USER_NAME\": $(helper argv "$INIT_COMMAND" "$@")"
rm -rf "$WORK"
trap - EXIT
if [ "$(id -u)" = "$USER_UID" ]; then
    exec "$INIT_COMMAND" "$@"
fi
exec setpriv --reuid "$USER_UID" --regid "$USER_GID" --init-groups "$INIT_COMMAND" "$@"
