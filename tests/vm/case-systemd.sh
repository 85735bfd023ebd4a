#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM case under systemd as PID 1 (run.sh --systemd): the Debian packages installed with
# dpkg as an administrator would, with nothing of the unit, the bus policy or the polkit
# action overridden; then vfiod as systemd runs it: started by D-Bus activation on the
# first vfioctl create, the nvme on a vfio driver and given back, its STATUS= in systemctl
# status, its log in the journal, nobody refused by the real polkitd, and the unit's
# exposure as systemd-analyze security rates it.
#
#   case-systemd.sh DEB_DIR      (DEB_DIR: from tests/package/test-package.sh --keep)
set -uo pipefail

DEBS=$1
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${RESULTS:-/var/tmp}
# shellcheck source=guest-lib.sh
. "$HERE/guest-lib.sh"

vm_under_systemd

: >"$RESULTS/figures"
# The journal of this boot for UNIT has a line matching the extended regex RE.
journal_has() { journalctl -b -q --no-pager -u "$1" -o cat | grep -qE -- "$2"; }

vm_check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd
vm_check "journald is active" systemctl -q is-active systemd-journald.service
vm_check "udevd is active" systemctl -q is-active systemd-udevd.service
vm_check "dbus.socket is listening" systemctl -q is-active dbus.socket

VFIOD_DEB=$(ls "$DEBS"/vfiod_*.deb 2>/dev/null)
LIB_DEB=$(ls "$DEBS"/libvfiod0_*.deb 2>/dev/null)
vm_check "the packages are there" test -f "$VFIOD_DEB" -a -f "$LIB_DEB" || vm_summary
vm_check_not "vfiod is not installed before" sh -c 'dpkg -s vfiod 2>/dev/null | grep -q "ok installed"'

# man-db's trigger would rebuild the index of every page (minutes under TCG).
rm -f /var/lib/man-db/auto-update
# A container image's policy-rc.d (Docker's "exit 101") forbids maintainer scripts to
# start services; an administrator's machine has none: let the postinst do what it does.
[ -e /usr/sbin/policy-rc.d ] && vm_note "removing the host image's /usr/sbin/policy-rc.d" &&
	rm -f /usr/sbin/policy-rc.d
t0=$(now_ns)
vm_check "dpkg -i vfiod libvfiod0" dpkg -i "$VFIOD_DEB" "$LIB_DEB"
figure dpkg-install-ms "$t0"
vm_check "vfiod.service is enabled" systemctl -q is-enabled vfiod.service
# dh_installsystemd's postinst starts the unit on installation, as it does on every
# machine: say what it did, then stop it, so that the bus has to start it again.
vm_note "after dpkg -i: vfiod.service is $(systemctl is-active vfiod.service)" \
	"($(systemctl show -p Result --value vfiod.service))"
vm_check "systemctl stop vfiod" systemctl stop vfiod.service
vm_check_not "vfiod is stopped" systemctl -q is-active vfiod.service

NVME=$(vm_pci_find 1b36 0010 plain) || { echo "no nvme"; vm_summary; }
vm_check "udev bound the nvme to nvme at boot" until_ok 30 \
	test "$(vm_pci_driver "$NVME")" = nvme

# The first call starts vfiod through D-Bus activation.
t0=$(now_ns)
vm_check "vfioctl create $NVME (vfiod stopped)" vfioctl create "$NVME"
figure create-with-activation-ms "$t0"
vm_check "vfiod.service is active" systemctl -q is-active vfiod.service
vm_check "dbus activated vfiod.service for org.vfiod1" until_ok 10 journal_has dbus.service \
	"Activating via systemd: service name='org.vfiod1' unit='vfiod.service'"
DRV=$(vm_pci_driver "$NVME")
GROUP=$(vm_pci_group "$NVME")
vm_note "$NVME is on $DRV, IOMMU group $GROUP"
vm_check "$NVME is on a vfio driver ($DRV)" sh -c "case '$DRV' in vfio*) true ;; *) false ;; esac"
vm_check "/dev/vfio/$GROUP is there" test -c "/dev/vfio/$GROUP"
vm_check "vfioctl list shows $NVME" sh -c "vfioctl -j list | grep -qF '$NVME'"

# The shipped sandbox is in force on the running vfiod: its bounding set is the unit's,
# no new privileges, a seccomp filter, its own mount namespace.
PID=$(systemctl show -p MainPID --value vfiod.service)
capbnd=$(awk '$1 == "CapBnd:" { print $2 }' "/proc/$PID/status")
if command -v capsh >/dev/null; then
	have=$(capsh --decode="$capbnd" | sed 's/.*=//' | tr , '\n' | sort | xargs)
	want=$(systemctl show -p CapabilityBoundingSet --value vfiod.service | xargs -n1 | sort | xargs)
	vm_check "vfiod's bounding set is the unit's ($have)" test "$have" = "$want"
else
	vm_skip "vfiod's bounding set is the unit's" "no capsh"
fi
vm_check "vfiod runs with NoNewPrivs and a seccomp filter" sh -c \
	"grep -qx 'NoNewPrivs:	1' /proc/$PID/status && grep -qx 'Seccomp:	2' /proc/$PID/status"
vm_check "vfiod runs in a mount namespace of its own" \
	test "$(readlink "/proc/$PID/ns/mnt")" != "$(readlink /proc/1/ns/mnt)"

STATUS=$(systemctl show -p StatusText --value vfiod.service)
vm_note "vfiod STATUS=$STATUS"
vm_check "systemctl status vfiod shows STATUS=" \
	sh -c "systemctl status --no-pager vfiod.service | grep -qF 'Status: \"$STATUS\"'"
vm_check "vfiod's STATUS= says it serves org.vfiod1" has "$STATUS" "org.vfiod1"

# Not root, no polkit rule: the real polkitd refuses (vfioctl allows interactive
# authorization; without an agent, polkitd asks for one and vfiod answers so).
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups vfioctl destroy "$NVME" 2>&1)
rc=$?
vm_note "nobody: vfioctl destroy: exit $rc: $out"
vm_check "nobody is refused (exit 1)" test $rc = 1
vm_check "nobody's refusal is AccessDenied or InteractiveAuthorizationRequired" \
	grep -qE 'AccessDenied|InteractiveAuthorizationRequired|needs interactive authentication|not authorized' <<<"$out"
vm_check "polkitd decided (polkit.service active)" systemctl -q is-active polkit.service
vm_check "nobody's refusal left $NVME on $DRV" test "$(vm_pci_driver "$NVME")" = "$DRV"

# --- The journal's fields: what was done to the nvme, found by its device.
SYS=$(readlink -f "/sys/bus/pci/devices/$NVME")
vm_check "journalctl VFIOD_DEVICE=$SYS VFIOD_OPERATION=assign: its assigned line" \
	sh -c "journalctl -b -q --no-pager -u vfiod.service VFIOD_DEVICE='$SYS' \
	       VFIOD_OPERATION=assign -o cat | grep -qF '$NVME: assigned'"
journalctl -b -q --no-pager -u vfiod.service VFIOD_DEVICE="$SYS" -o json >"$RESULTS/journal-fields.json"
vm_check "... with VFIOD_KIND=pci, VFIOD_NAME=$NVME, VFIOD_CALLER, SYSLOG_IDENTIFIER=vfiod" \
	python3 "$HERE/journal-fields.py" "$RESULTS/journal-fields.json" "$NVME"
vm_check "nobody's refusal has VFIOD_OPERATION=release" \
	sh -c "journalctl -b -q --no-pager -u vfiod.service VFIOD_DEVICE='$SYS' \
	       VFIOD_OPERATION=release -o cat | grep -q 'refused'"
vm_check_not "the start line carries no device" \
	sh -c "journalctl -b -q --no-pager -u vfiod.service VFIOD_DEVICE='$SYS' -o cat |
	       grep -q 'serving org.vfiod1'"

# --- polkit for real: the shipped rule grants the group vfiod; a rule of the
# administrator's grants one device to one user; everyone else is refused.
as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --init-groups "$@"
}
vm_check "dpkg made the group vfiod" getent group vfiod
vm_check "users vfadmin (in the group vfiod) and vfbob (not)" sh -c \
	"useradd -M -U -s /usr/sbin/nologin -G vfiod vfadmin &&
	 useradd -M -U -s /usr/sbin/nologin vfbob"
vm_check "vfadmin (group vfiod): vfioctl destroy $NVME" as vfadmin vfioctl destroy "$NVME"
vm_check "... $NVME is back on nvme" test "$(vm_pci_driver "$NVME")" = nvme
vm_check "vfadmin: vfioctl create $NVME" as vfadmin vfioctl create "$NVME"
vm_check "... $NVME is on $DRV again" test "$(vm_pci_driver "$NVME")" = "$DRV"
out=$(as vfbob vfioctl destroy "$NVME" 2>&1)
rc=$?
vm_note "vfbob, no rule yet: exit $rc: $out"
vm_check "vfbob (not in the group) is refused" test $rc = 1
vm_check "... and $NVME stays on $DRV" test "$(vm_pci_driver "$NVME")" = "$DRV"
TESTDEV=$(vm_pci_find 1b36 0005) || true
vm_check "there is a pci-testdev" test -n "$TESTDEV"
cat >/etc/polkit-1/rules.d/50-vfbob-one-device.rules <<RULE
polkit.addRule(function(action, subject) {
	if (action.id == "org.vfiod1.manage" && subject.user == "vfbob" &&
	    action.lookup("org.vfiod1.device") == "$SYS")
		return polkit.Result.YES;
});
RULE
# polkitd reads rules.d again when it changes (inotify); until then vfbob is refused.
vm_check "vfbob, with a rule for $NVME alone: vfioctl destroy $NVME" \
	until_ok 20 as vfbob vfioctl destroy "$NVME"
vm_check "... $NVME is back on nvme" test "$(vm_pci_driver "$NVME")" = nvme
vm_check "vfbob: vfioctl create $NVME" as vfbob vfioctl create "$NVME"
before=$(vm_pci_driver "$TESTDEV")
out=$(as vfbob vfioctl create "$TESTDEV" 2>&1)
rc=$?
vm_note "vfbob: vfioctl create $TESTDEV (not the rule's device): exit $rc: $out"
vm_check "vfbob is refused $TESTDEV" test $rc = 1
vm_check "... and $TESTDEV is as it was (${before:-no driver})" \
	test "$(vm_pci_driver "$TESTDEV")" = "$before"
journalctl -b -q --no-pager -u polkit.service -o short-monotonic >"$RESULTS/journal-polkit.txt"

# --- A holder of another user, seen through the sandbox (ProtectProc=invisible,
# CAP_SYS_PTRACE): vfbob's process has /dev/vfio/N open, as QEMU would as its user.
chown vfbob "/dev/vfio/$GROUP"
install -d -o vfbob /run/vfbob
# Not inside vm_check: its command substitution would wait for the holder.
HOLD_AS=vfbob hold_start "$GROUP" "$NVME" /run/vfbob/ready >/dev/null 2>&1
vm_check "vfbob holds $NVME through VFIO (process $HOLDER)" test -s /run/vfbob/ready
out=$(vfioctl destroy "$NVME" 2>&1)
rc=$?
vm_note "root: vfioctl destroy $NVME while vfbob holds it: exit $rc: $out"
vm_check "root's destroy is refused while vfbob holds it" test $rc != 0
vm_check "... naming vfbob's process $HOLDER" \
	grep -qF "process $HOLDER (python3) has /dev/vfio/$GROUP open" <<<"$out"
vm_check "... and $NVME stays on $DRV" test "$(vm_pci_driver "$NVME")" = "$DRV"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
chown root "/dev/vfio/$GROUP"

# --- A subfunction through the sandbox: devlink's port new, function set and activate
# over generic netlink, the auxiliary device bound; then deleted.
[ "$(vm_pci_driver "$TESTDEV")" = vfio_fixture_sf ] || modprobe vfio_fixture_sf
vm_check "pci-testdev $TESTDEV on the SF fixture" \
	until_ok 10 test "$(vm_pci_driver "$TESTDEV")" = vfio_fixture_sf
out=$(vfioctl -j create "$TESTDEV" sf 88 mac 00:11:22:33:44:55 2>&1)
AUX=$(jget 'd["auxiliary"]' <<<"$out" 2>/dev/null)
vm_check "vfioctl create $TESTDEV sf 88: auxiliary device ${AUX:-none}: $out" \
	test -n "$AUX" -a -d "/sys/bus/auxiliary/devices/$AUX"
vm_check "devlink shows sfnum 88 active" sh -c \
	"devlink port show | grep -A3 'sfnum 88' | grep -q 'state active'"
vm_check "vfioctl destroy $TESTDEV-sf88" vfioctl destroy "$TESTDEV-sf88"
vm_check "... the auxiliary device is gone" until_ok 10 test ! -e "/sys/bus/auxiliary/devices/$AUX"
vm_check "... and the port" sh -c "! devlink port show | grep -q 'sfnum 88'"

# --- An operation in flight when vfiod is stopped or frozen: the variant driver's probe
# made to sleep (the fixture's probe_delay_ms), the create started in the background.
PD=/sys/module/${DRV//-/_}/parameters/probe_delay_ms
vm_check "the variant driver $DRV takes a probe delay" test -w "$PD"
in_flight() { # an operation runs (Describe's "operations")
	busctl call org.vfiod1 /org/vfiod1 org.vfiod1.Manager Describe |
		grep -qE '\\"operations\\": ?\[ *\{|"operations": ?\[ *\{'
}
vm_check "vfioctl destroy $NVME (for a create in flight)" vfioctl destroy "$NVME"
echo 6000 >"$PD"
vfioctl create "$NVME" >"$RESULTS/create-restart.txt" 2>&1 &
bg=$!
vm_check "the create is in flight (a 6 s probe)" until_ok 10 in_flight
OLD=$(systemctl show -p MainPID --value vfiod.service)
t0=$(now_ns)
systemctl restart vfiod.service &
rs=$!
sleep 1
out=$(vfioctl create "$TESTDEV" 2>&1)
vm_note "vfioctl create $TESTDEV while vfiod stops: $out"
vm_check "... refused: vfiod is shutting down (org.vfiod1.Error.ShuttingDown)" \
	grep -qi 'shutting down' <<<"$out"
# (wait outside vm_check: its command runs in a subshell, whose children these are not)
wait $rs
rc=$?
figure restart-during-create-ms "$t0"
vm_check "systemctl restart vfiod, during the create" test $rc = 0
wait $bg
rc=$?
vm_check "... waited for the create: it succeeded ($(tr '\n' ' ' <"$RESULTS/create-restart.txt"))" \
	test $rc = 0
vm_check "... a new process" test "$(systemctl show -p MainPID --value vfiod.service)" != "$OLD"
vm_check "... $NVME on $DRV, listed by the new vfiod" sh -c \
	"test '$(vm_pci_driver "$NVME")' = '$DRV' && vfioctl -j list | grep -qF '\"$NVME\"'"
vm_check "... nothing left in vfiod's journal" test -z "$(ls /run/vfiod/journal 2>/dev/null)"

# The watchdog: vfiod frozen in the middle of a create is killed and started again, and
# settles what was in flight from its journal: its caller was told it failed, so vfiod
# rolls it back (vfiod(8), The journal).
vm_check "vfioctl destroy $NVME (for a create in flight)" vfioctl destroy "$NVME"
vfioctl create "$NVME" >"$RESULTS/create-watchdog.txt" 2>&1 &
bg=$!
vm_check "the create is in flight (a 6 s probe)" until_ok 10 in_flight
OLD=$(systemctl show -p MainPID --value vfiod.service)
WD=$(systemctl show -p WatchdogUSec --value vfiod.service)
restarts=$(systemctl show -p NRestarts --value vfiod.service)
kill -STOP "$OLD"
t0=$(now_ns)
vm_check "vfiod frozen (SIGSTOP): systemd restarts it (WatchdogSec=$WD)" \
	until_ok 90 sh -c "test \"\$(systemctl show -p NRestarts --value vfiod.service)\" = $((restarts + 1)) &&
			   systemctl -q is-active vfiod.service"
figure watchdog-restart-ms "$t0"
echo 0 >"$PD"
vm_check "... for the watchdog (journal: Watchdog timeout)" \
	journal_has vfiod.service "Watchdog timeout"
vm_check "... a new process" test "$(systemctl show -p MainPID --value vfiod.service)" != "$OLD"
wait $bg
vm_note "the frozen create's caller: exit $?: $(tr '\n' ' ' <"$RESULTS/create-watchdog.txt")"
vm_check "the new vfiod found the create in its journal" \
	journal_has vfiod.service "$NVME: vfiod stopped in the middle of "
vm_check "... and rolled it back: $NVME on nvme, not listed" until_ok 10 sh -c \
	"test \"\$(basename \"\$(readlink /sys/bus/pci/devices/$NVME/driver)\")\" = nvme &&
	 ! vfioctl -j list | grep -qF '\"$NVME\"'"
vm_check "... the new vfiod says so" journal_has vfiod.service "$NVME: interrupted assign rolled back"
vm_check "... nothing left in vfiod's journal" test -z "$(ls /run/vfiod/journal 2>/dev/null)"
vm_check "the new vfiod creates $NVME" vfioctl create "$NVME"

t0=$(now_ns)
vm_check "vfioctl destroy $NVME" vfioctl destroy "$NVME"
figure destroy-ms "$t0"
vm_check "$NVME is back on nvme" test "$(vm_pci_driver "$NVME")" = nvme

vm_check "journalctl -u vfiod: vfiod's start line" \
	journal_has vfiod.service "^vfiod .* serving org\.vfiod1 on "
vm_check "journalctl -u vfiod: vfiod's udev line" \
	journal_has vfiod.service "^udev: watching devices tagged"
vm_check "journalctl -u vfiod: $NVME assigned" journal_has vfiod.service "/$NVME: assigned"
vm_check "journalctl -u vfiod: $NVME released to nvme" \
	journal_has vfiod.service "/$NVME: released to nvme"
journalctl -b -q --no-pager -u vfiod.service -o short-monotonic >"$RESULTS/journal-vfiod.txt"
# Its own lines only: systemd's about the watchdog's kill are warnings, rightly.
vm_check "vfiod logged no error or warning" \
	test -z "$(journalctl -b -q --no-pager _SYSTEMD_UNIT=vfiod.service -p warning -o cat)"

systemd-analyze security --no-pager vfiod.service >"$RESULTS/security.txt" 2>&1
vm_note "systemd-analyze security vfiod.service: $(grep -E 'Overall exposure' "$RESULTS/security.txt")"
vm_check "systemd-analyze security rates vfiod.service" grep -q 'Overall exposure' "$RESULTS/security.txt"

vm_check "vfiod.service restarted by systemd once only (the watchdog's)" \
	test "$(systemctl show -p NRestarts --value vfiod.service)" = 1
t0=$(now_ns)
vm_check "systemctl stop vfiod" systemctl stop vfiod.service
figure stop-ms "$t0"
vm_check "vfiod stopped cleanly" test "$(systemctl show -p Result --value vfiod.service)" = success

sed 's/^/# /' "$RESULTS/figures"
vm_no_kernel_warnings
vm_summary
