#!/bin/sh
# /bin/alto-agent of the Altostratus demo OS image: the QEMU guest agent protocol reduced to what runCommand
# needs, in busybox sh. It answers on the virtio-serial port named org.qemu.guest_agent.0 (libvirt relays the
# host's commands) and implements guest-sync, guest-ping, guest-exec (a /bin/sh script given as input-data,
# output captured) and guest-exec-status; anything else gets CommandNotFound. One JSON object per line each way.
# busybox init respawns it (/etc/inittab).

work=/run/alto-agent
mkdir -p "$work"
port=""
while [ -z "$port" ]; do
    for p in /sys/class/virtio-ports/*; do
        [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port="/dev/${p##*/}"
    done
    [ -n "$port" ] || sleep 2
done

reply() { printf '%s\n' "$1" >&3; }
# A number or a base64 string field of the line (JSON writers may escape "/" as "\/": the backslashes go).
field() {
    printf '%s' "$line" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([A-Za-z0-9+\/=\\]*\).*/\1/p" | tr -d '\\'
}
b64() { base64 "$1" | tr -d '\n'; }

n=0
exec 3<>"$port"
echo "alto-agent: listening on $port" >/dev/console
while true; do
    if ! IFS= read -r line <&3; then
        sleep 1  # the host side is not connected: the port reads as closed until it is
        exec 3<>"$port"
        continue
    fi
    line=$(printf '%s' "$line" | tr -d '\377\r')
    case "$line" in
        *'"guest-sync'*)
            reply "{\"return\": $(field id)}"
            ;;
        *'"guest-ping"'*)
            reply '{"return": {}}'
            ;;
        *'"guest-exec-status"'*)
            job="$work/$(field pid)"
            if [ ! -d "$job" ] || [ "$job" = "$work/" ]; then
                reply '{"error": {"class": "GenericError", "desc": "no such process"}}'
            elif [ -f "$job/rc" ]; then
                reply "{\"return\": {\"exited\": true, \"exitcode\": $(cat "$job/rc"), \"out-data\": \"$(b64 "$job/out")\", \"err-data\": \"$(b64 "$job/err")\"}}"
                rm -rf "$job"
            else
                reply '{"return": {"exited": false}}'
            fi
            ;;
        *'"guest-exec"'*)
            n=$((n + 1))
            job="$work/$n"
            mkdir -p "$job"
            field input-data | base64 -d >"$job/in" 2>/dev/null
            (cd /root && /bin/sh <"$job/in" >"$job/out" 2>"$job/err"; echo $? >"$job/rc.tmp"; mv "$job/rc.tmp" "$job/rc") &
            reply "{\"return\": {\"pid\": $n}}"
            ;;
        *)
            reply '{"error": {"class": "CommandNotFound", "desc": "not supported by the demo image agent"}}'
            ;;
    esac
done
