//! The ipvlan driver, 802.1q parents and dummy parents against a kernel that has
//! them: Debian's, booted under qemu (TCG) with the busybox initramfs of
//! `berth_fixtures::vm` (the host's own kernel may lack ipvlan, 8021q and dummy, and
//! then network_macvlan.rs skips those tests).
//!
//! The guest gets `berth`, `berth-runtime`, `berth-monitor`, `berth-dns`, iproute2's
//! `ip` (for `ip netns`), the busybox image as a tar, and the kernel's own modules
//! (llc, stp, garp, mrp, 8021q, dummy, veth, macvlan, ipvlan), which `/init`'s body loads with
//! `insmod` in dependency order. The "LAN" is a veth pair: `lan0` in the guest's
//! namespace is the parent, its peer sits in the namespace `lanhost` (another host of
//! the LAN, 10.77.0.1/24, and 10.79.0.1/24 on its VLAN 10). One boot runs every case
//! from a shell script; each case prints `CASE <name> ok` only when all its checks
//! passed (else `CASE <name> FAIL <why>`), and the test asserts on those lines,
//! showing the whole guest console otherwise.
//!
//! ```text
//! cargo test -p berth-cli --test network_ipvlan_vm
//! ```
//!
//! Needs the Debian packages qemu-system-x86, linux-image-amd64 (kernel and modules)
//! and busybox-static; the test fails without them unless `BERTH_SKIP_VM=1` says to
//! skip it (which it then says loudly).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_fixtures::vm::{self, GuestRun};
use common::{busybox_tar, runtime, BERTH};

/// Modules in load order (each after its dependencies), relative to
/// `/lib/modules/<version>/kernel`.
const MODULES: &[&str] = &[
    "net/llc/llc.ko",
    "net/802/stp.ko",
    "net/802/garp.ko",
    "net/802/mrp.ko",
    "net/8021q/8021q.ko",
    "drivers/net/dummy.ko",
    "drivers/net/veth.ko",
    "drivers/net/macvlan.ko",
    "drivers/net/ipvlan/ipvlan.ko",
];

/// Cases the guest script must report as ok.
const CASES: &[&str] = &[
    "modules",
    "image",
    "l2",
    "l2-gone",
    "l2v6",
    "l3",
    "l3s",
    "l3v6",
    "l3sv6",
    "vlan",
    "vlan-kept",
    "dummy",
    "bad-parent",
    "bad-mode",
    "leftovers",
];

/// The test body (busybox sh in the guest).
const SCRIPT: &str = r#"
export BERTH_DAEMON_JSON=/nonexistent/daemon.json BERTH_LOOPBACK_REGISTRIES_ONLY=1
# Debian's busybox sh prefers its applets to PATH: iproute2 by its path.
IP=/usr/local/sbin/ip
# (a generous limit per command: the guest is emulated, and slow on a loaded host)
B="timeout 240 berth --root /var/lib/berth --storage-driver vfs"
ok() { echo "CASE $1 ok"; }
fail() { echo "CASE $1 FAIL $2"; }
lan() { $IP netns exec lanhost "$@"; }
# addr C: C's IPv4 address on eth0
addr() { $B exec "$1" ip -o -4 addr show eth0 | sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p'; }
# kind C: the ipvlan mode of C's eth0, seen with iproute2 from the guest
kind() { nsenter -t "$($B inspect -f '{{.State.Pid}}' "$1")" -n $IP -d -o link show eth0 | grep -o 'ipvlan *mode [a-z0-9]*'; }
# wait_free: lan0 has no ipvlan port left (a port takes its rx handler, so a macvlan
# cannot be made on it until the last ipvlan is gone; namespaces go in the background)
wait_free() {
  n=0
  while [ $n -lt 100 ]; do
    if $IP link add link lan0 name probe0 type macvlan 2>/dev/null; then
      $IP link del probe0; return 0
    fi
    sleep 0.2; n=$((n+1))
  done
  return 1
}
# bail CASE WHY: the case failed part way; what it made goes, so that the
# next case starts from a clean guest (one failure, not a cascade)
bail() {
  fail "$1" "$2"
  $B rm -f $($B ps -aq) >/dev/null 2>&1
  for n in $($B network ls --format '{{.Name}}'); do
    case "$n" in bridge|host|none) ;; *) $B network rm "$n" >/dev/null 2>&1 ;; esac
  done
  wait_free
}

case_modules() {
  for m in $(cat /mods/order); do
    # dummy.ko would make a dummy0 of its own
    case $m in dummy.ko) a=numdummies=0 ;; *) a= ;; esac
    insmod /mods/$m $a || { bail modules "insmod $m"; return; }
  done
  $IP netns add lanhost || { bail modules "ip netns add"; return; }
  $IP link add lan0 type veth peer name lan0p || { bail modules "veth"; return; }
  $IP link set lan0p netns lanhost
  $IP link set lan0 up
  lan $IP link set lo up
  lan $IP addr add 10.77.0.1/24 dev lan0p
  lan $IP link set lan0p up
  lan $IP link add link lan0p name lan0p.10 type vlan id 10 || { bail modules "vlan on the LAN host"; return; }
  lan $IP addr add 10.79.0.1/24 dev lan0p.10
  lan $IP link set lan0p.10 up
  ok modules
}

case_image() {
  $B import /images/busybox.tar busybox:latest >/dev/null || { bail image "import"; return; }
  ok image
}

# ipvlan l2 on the veth parent: addresses of the subnet, each other by address and
# name, the LAN host both ways; network rm leaves no port on the parent.
case_l2() {
  $B network create -d ipvlan -o parent=lan0 -o ipvlan_mode=l2 --subnet 10.77.0.0/24 --gateway 10.77.0.1 l2net >/dev/null || { bail l2 "network create"; return; }
  $B run -d --name c1 --network l2net busybox sleep 300 >/dev/null || { bail l2 "run c1"; return; }
  $B run -d --name c2 --network l2net busybox sleep 300 >/dev/null || { bail l2 "run c2"; return; }
  ip1=$(addr c1); ip2=$(addr c2); k=$(kind c1)
  echo "l2: c1=$ip1 c2=$ip2 link: $k"
  r=ok
  case "$k" in *"mode l2"*) ;; *) r="not an l2 ipvlan: [$k]" ;; esac
  case "$ip1" in 10.77.0.*) ;; *) r="c1 address [$ip1]" ;; esac
  case "$ip2" in 10.77.0.*) ;; *) r="c2 address [$ip2]" ;; esac
  [ "$ip1" != "$ip2" ] || r="same address"
  $B exec c1 ping -c 1 -W 3 "$ip2" >/dev/null || r="c1 -> c2 by address"
  $B exec c2 ping -c 1 -W 3 c1 >/dev/null || r="c2 -> c1 by name"
  $B exec c1 ping -c 1 -W 3 10.77.0.1 >/dev/null || r="c1 -> the LAN host"
  lan ping -c 1 -W 3 "$ip2" >/dev/null || r="the LAN host -> c2"
  $B rm -f c1 c2 >/dev/null || r="rm"
  $B network rm l2net >/dev/null || r="network rm"
  [ "$r" = ok ] && ok l2 || fail l2 "$r"
  left=$($IP -o link | grep '@lan0:')
  if [ -n "$left" ]; then fail l2-gone "links left: $left"
  elif ! wait_free; then fail l2-gone "lan0 still has an ipvlan port"
  elif ! $IP link show lan0 >/dev/null; then fail l2-gone "the parent went"
  else ok l2-gone; fi
}

# ipvlan l2 with IPv6 (--ipv6 --subnet fd77::/64): an address of the v6 subnet, the
# default route via the v6 gateway (the LAN host), the LAN host both ways over IPv6,
# each other by name with ping -6 (the /etc/hosts IPv6 lines).
case_l2v6() {
  lan $IP -6 addr add fd77::1/64 dev lan0p nodad
  $B network create -d ipvlan -o parent=lan0 --subnet 10.84.0.0/24 --gateway 10.84.0.1 --ipv6 --subnet fd77::/64 --gateway fd77::1 l2v6 >/dev/null || { bail l2v6 "network create"; return; }
  $B run -d --name c8 --network l2v6 busybox sleep 300 >/dev/null || { bail l2v6 "run c8"; return; }
  $B run -d --name c9 --network l2v6 busybox sleep 300 >/dev/null || { bail l2v6 "run c9"; return; }
  a8=$($B exec c8 ip -o -6 addr show eth0 scope global | sed -n 's/.* inet6 \([0-9a-f:]*\)\/.*/\1/p')
  rt=$($B exec c8 ip -6 route | grep '^default')
  echo "l2v6: c8=$a8 route: $rt"
  r=ok
  case "$a8" in fd77::*) ;; *) r="c8 address [$a8]" ;; esac
  case "$rt" in "default via fd77::1 "*) ;; *) r="c8 default route [$rt]" ;; esac
  $B exec c8 ping -6 -c 1 -W 3 fd77::1 >/dev/null || r="c8 -> the LAN host"
  lan ping -6 -c 1 -W 3 "$a8" >/dev/null || r="the LAN host -> c8"
  $B exec c9 ping -6 -c 1 -W 3 c8 >/dev/null || r="c9 -> c8 by name"
  $B rm -f c8 c9 >/dev/null || r="rm"
  $B network rm l2v6 >/dev/null || r="network rm"
  wait_free || r="lan0 still has an ipvlan port"
  lan $IP -6 addr del fd77::1/64 dev lan0p
  [ "$r" = ok ] && ok l2v6 || fail l2v6 "$r"
}

# ipvlan l3: the parent routes. Containers reach each other; the LAN host reaches
# them through a route via the guest's address on lan0.
case_l3() {
  $IP addr add 10.77.0.2/24 dev lan0
  lan $IP route add 10.78.0.0/24 via 10.77.0.2
  $B network create -d ipvlan -o parent=lan0 -o ipvlan_mode=l3 --subnet 10.78.0.0/24 l3net >/dev/null || { bail l3 "network create"; return; }
  $B run -d --name c3 --network l3net busybox sleep 300 >/dev/null || { bail l3 "run c3"; return; }
  $B run -d --name c4 --network l3net busybox sleep 300 >/dev/null || { bail l3 "run c4"; return; }
  ip3=$(addr c3); ip4=$(addr c4); k=$(kind c3)
  echo "l3: c3=$ip3 c4=$ip4 routes: $($B exec c3 ip route | tr '\n' ';') link: $k"
  r=ok
  case "$k" in *"mode l3 "*|*"mode l3") ;; *) r="not an l3 ipvlan: [$k]" ;; esac
  case "$ip3" in 10.78.0.*) ;; *) r="c3 address [$ip3]" ;; esac
  $B exec c3 ping -c 1 -W 3 "$ip4" >/dev/null || r="c3 -> c4"
  $B exec c4 ping -c 1 -W 3 c3 >/dev/null || r="c4 -> c3 by name"
  lan ping -c 1 -W 3 "$ip3" >/dev/null || r="the LAN host -> c3"
  $B rm -f c3 c4 >/dev/null || r="rm"
  $B network rm l3net >/dev/null || r="network rm"
  wait_free || r="lan0 still has an ipvlan port"
  lan $IP route del 10.78.0.0/24
  $IP addr del 10.77.0.2/24 dev lan0
  [ "$r" = ok ] && ok l3 || fail l3 "$r"
}

# ipvlan l3s: made and run.
case_l3s() {
  $B network create -d ipvlan -o parent=lan0 -o ipvlan_mode=l3s --subnet 10.80.0.0/24 l3snet >/dev/null || { bail l3s "network create"; return; }
  $B run -d --name c7 --network l3snet busybox sleep 300 >/dev/null || { bail l3s "run c7"; return; }
  k=$(kind c7); ip7=$(addr c7)
  echo "l3s: c7=$ip7 link: $k"
  r=ok
  case "$k" in *"mode l3s"*) ;; *) r="not an l3s ipvlan: [$k]" ;; esac
  case "$ip7" in 10.80.0.*) ;; *) r="c7 address [$ip7]" ;; esac
  $B rm -f c7 >/dev/null || r="rm"
  $B network rm l3snet >/dev/null || r="network rm"
  wait_free || r="lan0 still has an ipvlan port"
  [ "$r" = ok ] && ok l3s || fail l3s "$r"
}

# ipvlan l3 / l3s with IPv6 (--ipv6 --subnet fd7a::/64, fd7b::/64): addresses of the v6
# subnet, the IPv6 default route through the link itself (the parent routes), each
# other over IPv6 by address and by name, the LAN host both ways over IPv6 (it routes
# the subnet via the guest's IPv6 address on lan0).
l3v6() {
  c=$1; mode=$2; v4=$3; v6=$4
  $IP -6 addr add fd79::2/64 dev lan0 nodad
  lan $IP -6 addr add fd79::1/64 dev lan0p nodad
  lan $IP -6 route add $v6::/64 via fd79::2
  r=ok
  if ! $B network create -d ipvlan -o parent=lan0 -o ipvlan_mode=$mode --subnet $v4 --ipv6 --subnet $v6::/64 $c >/dev/null; then
    r="network create"
  elif ! $B run -d --name ${c}a --network $c busybox sleep 300 >/dev/null; then
    r="run ${c}a"
  elif ! $B run -d --name ${c}b --network $c busybox sleep 300 >/dev/null; then
    r="run ${c}b"
  else
    a=$($B exec ${c}a ip -o -6 addr show eth0 scope global | sed -n 's/.* inet6 \([0-9a-f:]*\)\/.*/\1/p')
    b=$($B exec ${c}b ip -o -6 addr show eth0 scope global | sed -n 's/.* inet6 \([0-9a-f:]*\)\/.*/\1/p')
    rt=$($B exec ${c}a ip -6 route | grep '^default')
    k=$(kind ${c}a)
    echo "$c: ${c}a=$a ${c}b=$b route: $rt link: $k"
    case "$k" in *"mode $mode "*|*"mode $mode") ;; *) r="not an $mode ipvlan: [$k]" ;; esac
    case "$a" in $v6::*) ;; *) r="${c}a address [$a]" ;; esac
    case "$b" in $v6::*) ;; *) r="${c}b address [$b]" ;; esac
    [ "$a" != "$b" ] || r="same address"
    case "$rt" in "default dev eth0"*) ;; *) r="${c}a default route [$rt]" ;; esac
    $B exec ${c}a ping -6 -c 1 -W 3 "$b" >/dev/null || r="${c}a -> ${c}b"
    $B exec ${c}b ping -6 -c 1 -W 3 ${c}a >/dev/null || r="${c}b -> ${c}a by name"
    $B exec ${c}a ping -6 -c 1 -W 3 fd79::1 >/dev/null || r="${c}a -> the LAN host"
    lan ping -6 -c 1 -W 3 "$b" >/dev/null || r="the LAN host -> ${c}b"
  fi
  $B rm -f ${c}a ${c}b >/dev/null 2>&1
  $B network rm $c >/dev/null || r="network rm"
  wait_free || r="lan0 still has an ipvlan port"
  lan $IP -6 route del $v6::/64
  lan $IP -6 addr del fd79::1/64 dev lan0p
  $IP -6 addr del fd79::2/64 dev lan0
  [ "$r" = ok ] && ok $c || fail $c "$r"
}

# -o parent=lan0.10: the 802.1q link is made (and removed with the network); the
# containers reach each other and the LAN host on VLAN 10. A VLAN link that was
# there before stays.
case_vlan() {
  $IP link show lan0.10 >/dev/null 2>&1 && { fail vlan "lan0.10 exists before"; return; }
  $B network create -d ipvlan -o parent=lan0.10 --subnet 10.79.0.0/24 --gateway 10.79.0.1 v10 >/dev/null || { bail vlan "network create"; return; }
  info=$($IP -d -o link show lan0.10)
  echo "vlan: $(echo "$info" | grep -o 'vlan protocol 802.1Q id [0-9]*') $(echo "$info" | grep -o 'state [A-Z]*')"
  r=ok
  case "$info" in *"lan0.10@lan0"*"802.1Q id 10 "*) ;; *) r="lan0.10 is not VLAN 10 of lan0: $info" ;; esac
  $B run -d --name c5 --network v10 busybox sleep 300 >/dev/null || { bail vlan "run c5"; return; }
  $B run -d --name c6 --network v10 busybox sleep 300 >/dev/null || { bail vlan "run c6"; return; }
  ip5=$(addr c5); ip6=$(addr c6)
  echo "vlan: c5=$ip5 c6=$ip6"
  case "$ip5" in 10.79.0.*) ;; *) r="c5 address [$ip5]" ;; esac
  $B exec c5 ping -c 1 -W 3 "$ip6" >/dev/null || r="c5 -> c6"
  $B exec c5 ping -c 1 -W 3 10.79.0.1 >/dev/null || r="c5 -> the LAN host on VLAN 10"
  lan ping -c 1 -W 3 "$ip6" >/dev/null || r="the LAN host -> c6"
  $B rm -f c5 c6 >/dev/null || r="rm"
  $B network rm v10 >/dev/null || r="network rm"
  $IP link show lan0.10 >/dev/null 2>&1 && r="lan0.10 left after network rm"
  [ "$r" = ok ] && ok vlan || fail vlan "$r"

  $IP link add link lan0 name lan0.20 type vlan id 20 && $IP link set lan0.20 up || { bail vlan-kept "making lan0.20"; return; }
  r=ok
  $B network create -d ipvlan -o parent=lan0.20 --subnet 10.82.0.0/24 v20 >/dev/null || r="network create"
  $B run --rm --network v20 busybox true || r="run"
  $B network rm v20 >/dev/null || r="network rm"
  $IP link show lan0.20 >/dev/null 2>&1 || r="lan0.20 was removed"
  $IP link del lan0.20
  [ "$r" = ok ] && ok vlan-kept || fail vlan-kept "$r"
}

# No parent (--internal): a dummy dm-<id> is the parent, removed with the network.
case_dummy() {
  id=$($B network create -d ipvlan --internal --subnet 10.81.0.0/24 int) || { bail dummy "network create"; return; }
  d=dm-$(echo "$id" | cut -c1-12)
  info=$($IP -d -o link show "$d" 2>&1)
  echo "dummy: $d: $(echo "$info" | grep -o ' dummy ')"
  r=ok
  case "$info" in *" dummy "*) ;; *) r="no dummy $d: $info" ;; esac
  out=$($B run --rm --network int busybox ip -o -4 addr show eth0 2>&1) || r="run: $out"
  case "$out" in *" 10.81.0."*) ;; *) r="address: $out" ;; esac
  $B network rm int >/dev/null || r="network rm"
  $IP link show "$d" >/dev/null 2>&1 && r="$d left after network rm"
  [ "$r" = ok ] && ok dummy || fail dummy "$r"
}

# bad BAD-CASE WANT ARGS...: refused with one line containing WANT, nothing made.
bad() {
  c=$1; want=$2; shift 2
  nets=$($B network ls -q | wc -l); links=$($IP -o link | wc -l)
  err=$($B network create "$@" bad 2>&1 >/dev/null); rc=$?
  echo "$c: rc=$rc [$err]"
  r=ok
  [ $rc != 0 ] || r="accepted"
  [ "$(echo "$err" | wc -l)" = 1 ] || r="not one line"
  case "$err" in *"$want"*) ;; *) r="wrong error" ;; esac
  [ "$($B network ls -q | wc -l)" = "$nets" ] || r="a network was recorded"
  [ "$($IP -o link | wc -l)" = "$links" ] || r="a link was made: $($IP -o link)"
  [ "$r" = ok ] && ok $c || fail $c "$r"
}

case_leftovers() {
  links=$($IP -o link | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p' | tr '\n' ' ')
  nets=$($B network ls --format '{{.Name}}' | tr '\n' ' ')
  ps=$($B ps -aq | tr '\n' ' ')
  echo "leftovers: links=[$links] networks=[$nets] containers=[$ps]"
  r=ok
  [ "$links" = "lo lan0 " ] || r="links [$links]"
  [ -z "$ps" ] || r="containers [$ps]"
  [ "$r" = ok ] && ok leftovers || fail leftovers "$r"
}

t() { t0=$(cut -d' ' -f1 /proc/uptime); "$@"; echo "time $1: $t0 -> $(cut -d' ' -f1 /proc/uptime) s"; }
t case_modules
t case_image
t case_l2
t case_l2v6
t case_l3
t case_l3s
t l3v6 l3v6 l3 10.85.0.0/24 fd7a
t l3v6 l3sv6 l3s 10.86.0.0/24 fd7b
t case_vlan
t case_dummy
t bad bad-parent "-o parent interface was not found on the host: nosuch0" -d ipvlan -o parent=nosuch0.10 --subnet 10.83.0.0/24
t bad bad-mode "requested ipvlan mode 'bogus' is not valid, 'l2' mode is the ipvlan driver default" -d ipvlan -o parent=lan0 -o ipvlan_mode=bogus --subnet 10.83.0.0/24
t case_leftovers
"#;

/// `/lib/modules/<version>` of the kernel image `vmlinuz-<version>`.
fn modules_dir(kernel: &Path) -> PathBuf {
    let name = kernel.file_name().unwrap().to_string_lossy().into_owned();
    let version = name.strip_prefix("vmlinuz-").unwrap_or_else(|| {
        panic!(
            "cannot tell the version of the kernel {}: its modules are needed",
            kernel.display()
        )
    });
    Path::new("/lib/modules").join(version)
}

#[test]
fn ipvlan_vlan_and_dummy_parents_in_a_guest() {
    if vm::skip_requested() {
        return;
    }
    let started = Instant::now();
    let kernel = vm::find_kernel().unwrap_or_else(|e| panic!("{e}"));
    let mods = modules_dir(&kernel);
    let rt = runtime();
    let bin_dir = Path::new(BERTH).parent().unwrap();

    let mut guest = GuestRun::new().kernel(&kernel);
    let mut order = String::new();
    for m in MODULES {
        let host = mods.join("kernel").join(m);
        assert!(
            host.is_file(),
            "{} is missing: the guest kernel {} needs its modules (Debian package \
             linux-image-amd64, uncompressed .ko; BERTH_SKIP_VM=1 skips VM tests)",
            host.display(),
            kernel.display()
        );
        let name = Path::new(m)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        guest = guest.host_file(&host, format!("/mods/{name}")).unwrap();
        order.push_str(&name);
        order.push('\n');
    }
    guest = guest
        .file("/mods/order", order, 0o644)
        .unwrap()
        .binary_as(BERTH, "/usr/local/bin/berth")
        .unwrap()
        .binary_as(rt, "/usr/local/bin/berth-runtime")
        .unwrap();
    for b in ["berth-monitor", "berth-dns"] {
        guest = guest
            .binary_as(bin_dir.join(b), format!("/usr/local/bin/{b}"))
            .unwrap();
    }
    // iproute2's ip for `ip netns` and `ip -d` (busybox's has neither).
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("iproute2's ip (Debian package iproute2)");
    let out = guest
        .binary_as(ip, "/usr/local/sbin/ip")
        .unwrap()
        .file("/images/busybox.tar", busybox_tar(), 0o644)
        .unwrap()
        .script(SCRIPT)
        // About 2 to 4 minutes under TCG (debug binaries, a loaded host): a wide margin.
        .run(Duration::from_secs(1200))
        .unwrap_or_else(|e| panic!("the guest failed: {e}"));
    out.assert_cases(CASES, started);
}
