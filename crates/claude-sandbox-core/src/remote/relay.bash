# claude-sandbox relay through bash's /dev/tcp: connects to 127.0.0.1:PORT in the sandbox and copies
# stdin to the connection and the connection to stdout, until either side closes.
# Argument: PORT
exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
exec 4<&0
cat <&3 &
from_sandbox=$!
cat <&4 >&3 &
to_sandbox=$!
wait -n
kill "$from_sandbox" "$to_sandbox" 2>/dev/null
exit 0
