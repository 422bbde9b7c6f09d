# claude-sandbox relay probe: prints the first program this sandbox image has that can relay a TCP
# connection over an exec session's stdin and stdout; exits 1 when it has none.
for program in bash socat nc; do
    if command -v "$program" >/dev/null 2>&1; then
        printf '%s\n' "$program"
        exit 0
    fi
done
exit 1
