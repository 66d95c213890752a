#!/bin/busybox sh
# /init of the Altostratus demo OS image (runs as PID 1 from the initramfs, busybox only).
#
# It plays the part cloud-init plays in a real cloud image, reduced to what the demo needs: say which image
# booted, read a NoCloud seed (label "cidata"), set the hostname, run a "#!" user-data script, print one
# readiness line the platform can wait for, then hand over to busybox init (root shell on ttyS0, ACPI
# power button -> clean power-off). The lines starting ALTOSTRATUS- are an interface: keep their format.

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /run /tmp /mnt/seed /root /var/log /var/run
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
exec </dev/console >/dev/console 2>&1

. /etc/altostratus/image
echo  # SeaBIOS/SYSLINUX leave terminal escapes on the line: start a fresh one
echo "ALTOSTRATUS-IMAGE publisher=$IMAGE_PUBLISHER offer=$IMAGE_OFFER sku=$IMAGE_SKU version=$IMAGE_VERSION"

# Debian builds virtio, FAT, ISO 9660 etc. as modules; the builder listed them in dependency order.
while read -r mod; do
    insmod "/lib/modules/$mod.ko" 2>/dev/null || echo "altostratus: could not load module $mod"
done </lib/modules/load-order
hostname localhost
acpid  # busybox acpid: the power button runs /etc/acpi/PWRF/00000080 (poweroff)

# NoCloud seed: a vfat or iso9660 filesystem labelled cidata. insmod waits for the probes it starts, so the
# devices are normally there already; the short retry loop (about 2 s with no seed) covers slow ones.
seed_dev=""
tries=0
while [ -z "$seed_dev" ] && [ $tries -lt 6 ]; do
    seed_dev=$(findfs LABEL=cidata 2>/dev/null || findfs LABEL=CIDATA 2>/dev/null)
    [ -n "$seed_dev" ] || usleep 250000
    tries=$((tries + 1))
done

# Reads "key: value" (YAML) or "key": "value", (JSON) from meta-data.
meta() {
    sed -n "s/^[[:space:]]*\"\{0,1\}$1\"\{0,1\}[[:space:]]*:[[:space:]]*//p" /run/altostratus/seed/meta-data \
        | head -n 1 | tr -d '\r' | sed 's/[[:space:]]*,\{0,1\}[[:space:]]*$//; s/^["'\'']//; s/["'\'']$//'
}

instance_id=none
mkdir -p /run/altostratus/seed
if [ -n "$seed_dev" ] && mount -o ro "$seed_dev" /mnt/seed; then
    cp -r /mnt/seed/. /run/altostratus/seed/ 2>/dev/null
    umount /mnt/seed
    echo "altostratus: NoCloud seed found on $seed_dev"
    if [ -f /run/altostratus/seed/meta-data ]; then
        instance_id=$(meta instance-id)
        [ -n "$instance_id" ] || instance_id=none
        host=$(meta local-hostname)
        [ -n "$host" ] || host=$(meta hostname)
        if [ -n "$host" ]; then
            hostname "$host"
            echo "$host" >/etc/hostname
        fi
    fi
    ud=/run/altostratus/seed/user-data
    if [ -s "$ud" ]; then
        case "$(head -n 1 "$ud")" in
            '#!'*)
                chmod 755 "$ud"
                echo "altostratus: running user-data script"
                (cd /root && "$ud" </dev/null)
                echo "ALTOSTRATUS-USERDATA exit=$?"
                ;;
            '#cloud-config'*)
                echo "altostratus: #cloud-config user-data is not supported by this demo image (only #! scripts); ignored"
                ;;
            *)
                echo "altostratus: unsupported user-data format (only #! scripts); ignored"
                ;;
        esac
    fi
else
    echo "altostratus: no NoCloud seed (no filesystem labelled cidata)"
fi

echo "ALTOSTRATUS-READY instance-id=$instance_id hostname=$(hostname) version=$IMAGE_VERSION"
exec /bin/busybox init
