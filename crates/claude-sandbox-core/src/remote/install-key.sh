# claude-sandbox ssh --install-key: adds a public key to the user's ~/.ssh/authorized_keys once.
# Argument: KEY (one line, as in a .pub file)
set -u
key=$1
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh" || exit
file=$HOME/.ssh/authorized_keys
touch "$file" && chmod 600 "$file" || exit
if grep -qxF -- "$key" "$file"; then
    echo unchanged
else
    printf '%s\n' "$key" >>"$file" && echo added
fi
