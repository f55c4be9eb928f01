//! Container networking end to end, in real VMs inside the KVM test host:
//! published ports over TCP and UDP, NAT out of the host, the container's
//! /etc files, `--network none`, the port-in-use error, and no leftovers
//! after many runs. Traffic only goes to servers the tests start, in
//! containers or in the test host.

use hull_e2e::script::{facts, in_test_host};

/// `$R2`: the busybox root plus `udp-echo` and the libraries it links.
const UDP_ROOTFS: &str = r#"
R2=$(mktemp -d /tmp/hull-udp-rootfs.XXXXXX)
cp -a $R/. $R2/
cp $udp $R2/bin/udp-echo
for lib in $(ldd $udp | grep -o '/[^ ]*'); do
    mkdir -p $R2$(dirname $lib); cp $lib $R2$lib
done
"#;

#[test]
fn published_ports_reach_containers_over_tcp_and_udp() {
    let output = in_test_host(&format!(
        "{UDP_ROOTFS}{}",
        r#"
$h run -d --name web -p 8080:80 -p 127.0.0.1::80 --rootfs $R -- \
    sh -c 'mkdir /www; echo "hello from $(hostname)" > /www/index.html; exec httpd -f -p 80 -h /www' >/dev/null
echo "hostname=$($h inspect web | grep -o '"Hostname": "[^"]*"' | cut -d'"' -f4)"
wait_for 'wget -q -O - http://127.0.0.1:8080/ >/dev/null 2>&1'
echo "loopback=$(wget -q -O - http://127.0.0.1:8080/)"
echo "bridge-address=$(wget -q -O - http://10.89.0.1:8080/)"
ip=$($h inspect web | grep -o '"IPAddress": "[0-9.]*"' | head -n 1 | cut -d'"' -f4)
echo "ip=$ip"
echo "direct=$(wget -q -O - http://$ip/)"
echo "port=$($h port web | head -n 1)"
picked=$($h port web 80/tcp | sed -n 2p)
echo "picked=${picked%:*}"
echo "fetch-picked=$(wget -q -O - http://$picked/)"
echo "ps=$($h ps --format json | grep -o '"Ports":"[^"]*"' | sed 's/127.0.0.1:[0-9]*/127.0.0.1:N/')"
echo "hosts=$($h exec web tail -n 1 /etc/hosts)"
echo "etc-hostname=$($h exec web cat /etc/hostname)"
$h run -d --name late -p 8080:80 --rootfs $R -- true 2>err; echo "in-use=$?"
echo "in-use-error=$(cat err)"
echo "containers=$($h ps -aq | wc -l)"
$h run -d --name spill -p 8080-8081:80 -p 127.0.0.1:9000-9001:90-91 --rootfs $R -- \
    sh -c 'mkdir /www; echo "spilled over" > /www/index.html; exec httpd -f -p 80 -h /www' >/dev/null
wait_for 'wget -q -O - http://127.0.0.1:8081/ >/dev/null 2>&1'
echo "spill=$(wget -q -O - http://127.0.0.1:8081/)"
echo "spill-ports=$($h port spill | tr '\n' ,)"
$h rm -f spill >/dev/null

$h run -d --name echo -p 5353:7/udp --dns 192.0.2.53 --add-host db:192.0.2.9 \
    --add-host hostbox:host-gateway --ip 10.89.7.7 --mac-address 02:00:00:00:07:07 --rootfs $R2 -- /bin/udp-echo serve 7 >/dev/null
echo "udp=$($udp ask 127.0.0.1:5353 ping)"
echo "udp-again=$($udp ask 10.89.0.1:5353 pong)"
echo "resolv=$($h exec echo cat /etc/resolv.conf)"
echo "add-host=$($h exec echo grep db /etc/hosts)"
echo "extra-hosts=$($h inspect -f '{{json .HostConfig.ExtraHosts}}' echo)"
echo "host-gateway=$($h exec echo grep hostbox /etc/hosts)"
mkdir /tmp/host-www; echo "served by the host" > /tmp/host-www/index.html
$R/bin/busybox httpd -f -p 10.89.0.1:8099 -h /tmp/host-www & host_web=$!
wait_for 'wget -q -O /dev/null http://10.89.0.1:8099/ 2>/dev/null'
echo "to-host=$($h exec echo wget -q -O - http://hostbox:8099/ 2>&1)"
kill $host_web
$h run --network none --add-host hostbox:host-gateway --rootfs $R -- true 2>err; echo "none-host-gateway=$? $(cat err)"
echo "addr=$($h exec echo ip -o -4 addr show | grep -v ' lo ' | awk '{print $4}')"
echo "mac=$($h exec echo cat /sys/class/net/eth0/address)"
echo "ping-web=$($h exec echo ping -c 1 -W 10 $ip >/dev/null && echo ok)"
echo "network-ls=$($h network ls | awk 'NR > 1 { print $2, $3, $4 }')"
echo "network-members=$($h network inspect bridge | grep -c -e '"IPv4Address": "10.89.0.2/16"' -e '"IPv4Address": "10.89.7.7/16"')"
$h rm -f web echo >/dev/null
wget -q -T 5 -O - http://127.0.0.1:8080/ >/dev/null 2>&1; echo "after-rm=$?"
echo "leases=$(cat $HULL_ROOT/networks/bridge/leases.json | tr -d ' \n')"
"#
    ));
    let hostname = facts(&output, "hostname")[0];
    let greeting = format!("hello from {hostname}");
    // Reachable on the host's loopback, on its other addresses, and at the
    // container's own address on the bridge.
    assert_eq!(facts(&output, "loopback"), [greeting.as_str()], "{output}");
    assert_eq!(
        facts(&output, "bridge-address"),
        [greeting.as_str()],
        "{output}"
    );
    assert_eq!(facts(&output, "ip"), ["10.89.0.2"], "{output}");
    assert_eq!(facts(&output, "direct"), [greeting.as_str()], "{output}");
    assert_eq!(
        facts(&output, "port"),
        ["80/tcp -> 0.0.0.0:8080"],
        "{output}"
    );
    assert_eq!(facts(&output, "picked"), ["127.0.0.1"], "{output}");
    assert_eq!(
        facts(&output, "fetch-picked"),
        [greeting.as_str()],
        "{output}"
    );
    assert_eq!(
        facts(&output, "ps"),
        [r#""Ports":"0.0.0.0:8080->80/tcp, 127.0.0.1:N->80/tcp""#],
        "{output}"
    );
    assert_eq!(
        facts(&output, "hosts"),
        [format!("10.89.0.2\t{hostname}")],
        "{output}"
    );
    assert_eq!(facts(&output, "etc-hostname"), [hostname], "{output}");
    // A taken host port: one line naming it, nothing created.
    assert_eq!(facts(&output, "in-use"), ["125"], "{output}");
    assert_eq!(
        facts(&output, "in-use-error"),
        ["hull: cannot publish 80/tcp: host port 0.0.0.0:8080/tcp is already in use; choose another with -p"],
        "{output}"
    );
    assert_eq!(facts(&output, "containers"), ["1"], "{output}");
    // A host range: one container port on its first free port, a range of
    // them port by port.
    assert_eq!(facts(&output, "spill"), ["spilled over"], "{output}");
    assert_eq!(
        facts(&output, "spill-ports"),
        ["80/tcp -> 0.0.0.0:8081,90/tcp -> 127.0.0.1:9000,91/tcp -> 127.0.0.1:9001,"],
        "{output}"
    );
    // UDP, answered through the proxy from either host address.
    assert_eq!(facts(&output, "udp"), ["re:ping"], "{output}");
    assert_eq!(facts(&output, "udp-again"), ["re:pong"], "{output}");
    // The network's name server, which forwards what it does not know to
    // the --dns servers.
    assert_eq!(
        facts(&output, "resolv"),
        ["nameserver 10.89.0.1"],
        "{output}"
    );
    assert_eq!(facts(&output, "add-host"), ["192.0.2.9\tdb"], "{output}");
    assert_eq!(
        facts(&output, "extra-hosts"),
        [r#"["db:192.0.2.9","hostbox:host-gateway"]"#],
        "{output}"
    );
    // host-gateway: the host, at the network's gateway.
    assert_eq!(
        facts(&output, "host-gateway"),
        ["10.89.0.1\thostbox"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "to-host"),
        ["served by the host"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "none-host-gateway"),
        ["125 hull: --add-host hostbox:host-gateway needs a network: with --network none the container cannot reach the host"],
        "{output}"
    );
    assert_eq!(facts(&output, "addr"), ["10.89.7.7/16"], "{output}");
    assert_eq!(facts(&output, "mac"), ["02:00:00:00:07:07"], "{output}");
    assert_eq!(facts(&output, "ping-web"), ["ok"], "{output}");
    assert_eq!(
        facts(&output, "network-ls"),
        ["bridge bridge local"],
        "{output}"
    );
    assert_eq!(facts(&output, "network-members"), ["2"], "{output}");
    // Removed containers free their ports and addresses.
    assert_ne!(facts(&output, "after-rm"), ["0"], "{output}");
    assert_eq!(facts(&output, "leases"), ["{}"], "{output}");
}

#[test]
fn containers_reach_out_through_nat_and_network_none_is_loopback_only() {
    let output = in_test_host(
        r#"
# An "outside" server: in its own network namespace behind a veth pair, so
# traffic to it is routed out of the test host and masqueraded.
ip netns add outside
ip link add hullt-out type veth peer name hullt-in netns outside
ip addr add 192.0.2.1/24 dev hullt-out; ip link set hullt-out up
ip netns exec outside ip addr add 192.0.2.2/24 dev hullt-in
ip netns exec outside ip link set hullt-in up
ip netns exec outside ip link set lo up
www=$(mktemp -d); mkdir $www/cgi-bin
printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > $www/cgi-bin/ip
chmod +x $www/cgi-bin/ip
ip netns exec outside busybox httpd -p 192.0.2.2:80 -h $www
echo "outside-from-host=$(wget -q -O - http://192.0.2.2/cgi-bin/ip)"
echo "seen-as=$($h run --rm --rootfs $R -- wget -q -O - http://192.0.2.2/cgi-bin/ip)"
# From outside, containers are reachable only through published ports.
$h run -d --name web --rootfs $R -- httpd -f -p 80 -h /etc >/dev/null
wait_for 'wget -q -O /dev/null http://10.89.0.2/passwd 2>/dev/null'
ip netns exec outside ip route add 10.89.0.0/16 via 192.0.2.1
ip netns exec outside wget -q -T 5 -t 1 -O /dev/null http://10.89.0.2/passwd 2>/dev/null; echo "inbound=$?"
$h rm -f web >/dev/null
# An internal network: its containers reach each other (by name) and
# nothing outside; they publish no ports.
$h network create --internal sealed >/dev/null
$h run -d --name vault --network sealed --rootfs $R -- httpd -f -p 80 -h /etc >/dev/null
echo "internal-peer=$($h run --rm --network sealed --rootfs $R -- wget -q -O - http://vault/passwd | head -n 1)"
echo "internal-out=$($h run --rm --network sealed --rootfs $R -- sh -c 'wget -q -T 5 -O - http://192.0.2.2/cgi-bin/ip || echo unreachable' 2>/dev/null)"
$h run --rm --network sealed -p 8088:80 --rootfs $R -- true 2>err; echo "internal-publish=$? $(cat err)"
$h rm -f vault >/dev/null; $h network rm sealed >/dev/null
echo "none-links=$($h run --rm --network none --rootfs $R -- sh -c 'ip -o link show | cut -d: -f2 | tr -d " \n"')"
echo "none-lo=$($h run --rm --network none --rootfs $R -- sh -c 'httpd -p 127.0.0.1:80 -h /etc; wget -q -O - http://127.0.0.1/passwd | head -n 1')"
# stdout and stderr are separate streams (their lines may arrive in either
# order): look for ping's error among both.
echo "none-out=$($h run --rm --network none --rootfs $R -- ping -c 1 -W 5 192.0.2.2 2>&1 | grep -o 'sendto: Network is unreachable')"
$h run --rm --network none -p 80 --rootfs $R -- true 2>err; echo "none-publish=$?"
echo "none-publish-error=$(cat err)"
$h run --rm --network backend --rootfs $R -- true 2>err; echo "no-network=$?"
echo "no-network-error=$(cat err)"
"#,
    );
    assert_eq!(
        facts(&output, "outside-from-host"),
        ["192.0.2.1"],
        "{output}"
    );
    // The container's address (10.89.0.x) is masqueraded as the host's.
    assert_eq!(facts(&output, "seen-as"), ["192.0.2.1"], "{output}");
    // GNU wget's "network failure": the packets are dropped.
    assert_eq!(facts(&output, "inbound"), ["4"], "{output}");
    assert_eq!(
        facts(&output, "internal-peer"),
        ["root:x:0:0:root:/root:/bin/sh"],
        "{output}"
    );
    assert_eq!(facts(&output, "internal-out"), ["unreachable"], "{output}");
    assert_eq!(
        facts(&output, "internal-publish"),
        ["125 hull: network sealed is internal: nothing outside it reaches its containers, so they publish no ports"],
        "{output}"
    );
    assert_eq!(facts(&output, "none-links"), ["lo"], "{output}");
    assert_eq!(
        facts(&output, "none-lo"),
        ["root:x:0:0:root:/root:/bin/sh"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "none-out"),
        ["sendto: Network is unreachable"],
        "{output}"
    );
    assert_eq!(facts(&output, "none-publish"), ["125"], "{output}");
    assert_eq!(
        facts(&output, "none-publish-error"),
        ["hull: --network none gives the container no network: -p, -P, --ip, --mac-address and --network-alias need one"],
        "{output}"
    );
    assert_eq!(facts(&output, "no-network"), ["125"], "{output}");
    assert_eq!(
        facts(&output, "no-network-error"),
        ["hull: no such network: backend; see `hull network ls`"],
        "{output}"
    );
}

#[test]
fn twenty_runs_leave_no_taps_rules_ports_or_leases_behind() {
    let output = in_test_host(
        r#"
$h run --rm -p 9000:80 --rootfs $R -- true; echo "first=$?"
rules=$(nft list table ip hull)
for i in $(seq 10); do
    $h run --rm -p 9000:80 --rootfs $R -- true || echo "run-failed=$i"
    id=$($h run -d -p 9001:80/udp --rootfs $R -- sleep 600)
    wait_for "$h ps -q | grep -q $(echo $id | cut -c1-12)"
    $h rm -f $id >/dev/null || echo "rm-failed=$i"
done
echo "taps=$(ip -o link show | grep -c htap)"
echo "bridges=$(ip -o link show type bridge | cut -d: -f2 | tr -d ' \n')"
[ "$(nft list table ip hull)" = "$rules" ] && echo "rules=unchanged"
echo "leases=$(cat $HULL_ROOT/networks/bridge/leases.json | tr -d ' \n')"
echo "containers=$($h ps -aq | wc -l) $(ls $HULL_ROOT/run | wc -l)"
busybox nc -l -p 9000 -e true & server=$!
sleep 0.5; kill $server 2>/dev/null && echo "port-free=yes"
"#,
    );
    assert_eq!(facts(&output, "first"), ["0"], "{output}");
    assert!(facts(&output, "run-failed").is_empty(), "{output}");
    assert!(facts(&output, "rm-failed").is_empty(), "{output}");
    assert_eq!(facts(&output, "taps"), ["0"], "{output}");
    assert_eq!(facts(&output, "bridges"), ["hull0"], "{output}");
    assert_eq!(facts(&output, "rules"), ["unchanged"], "{output}");
    assert_eq!(facts(&output, "leases"), ["{}"], "{output}");
    assert_eq!(facts(&output, "containers"), ["0 0"], "{output}");
    assert_eq!(facts(&output, "port-free"), ["yes"], "{output}");
}

#[test]
fn user_networks_resolve_names_reach_within_and_are_isolated_from_each_other() {
    let output = in_test_host(
        r#"
$h network create front >/dev/null; echo "create=$?"
$h network create --subnet 10.91.0.0/24 back >/dev/null
$h network create --subnet 10.91.0.128/25 clash 2>err; echo "overlap=$? $(cat err)"
echo "ls=$($h network ls | awk 'NR > 1 { print $2 }' | tr '\n' ' ')"
$h run -d --name web --network front --network-alias site --rootfs $R -- httpd -f -p 80 -h /etc >/dev/null
$h run -d --name peer --network front --link web:legacy --rootfs $R -- sleep 600 >/dev/null
$h run -d --name db --network back --rootfs $R -- sleep 600 >/dev/null
$h run --rm --network front --link db --rootfs $R -- true 2>err; echo "link-elsewhere=$? $(cat err)"
$h run --rm --network front --link nosuch:x --rootfs $R -- true 2>err; echo "link-nosuch=$? $(cat err)"
$h run -d --name other --rootfs $R -- sleep 600 >/dev/null
wait_for 'wget -q -O /dev/null http://10.90.0.2/passwd 2>/dev/null'
wait_for '[ $($h ps -q | wc -l) -eq 4 ]'
echo "same-network=$($h exec peer wget -q -O - http://10.90.0.2/passwd | head -n 1)"
echo "from-back=$($h exec db ping -c 1 -W 3 10.90.0.2 >/dev/null 2>&1; echo $?)"
echo "from-default=$($h exec other ping -c 1 -W 3 10.90.0.2 >/dev/null 2>&1; echo $?)"
echo "to-back=$($h exec peer ping -c 1 -W 3 10.91.0.2 >/dev/null 2>&1; echo $?)"
echo "within=$($h exec peer ping -c 1 -W 3 10.90.0.2 >/dev/null 2>&1; echo $?)"
echo "resolv=$($h exec peer cat /etc/resolv.conf)"
echo "by-name=$($h exec peer wget -q -O - http://web/passwd | head -n 1)"
echo "by-alias=$($h exec peer ping -c 1 -W 3 site | head -n 1 | cut -d' ' -f3)"
echo "link=$($h exec peer grep -E 'legacy|web$' /etc/hosts | paste -sd'|')"
echo "by-short-id=$($h exec web ping -c 1 -W 3 $($h ps -q -f name=peer) | head -n 1 | cut -d' ' -f3)"
$h rename peer visitor
echo "renamed=$($h exec web ping -c 1 -W 3 visitor | head -n 1 | cut -d' ' -f3)"
echo "other-network-name=$($h exec web nslookup db >/dev/null 2>&1; echo $?)"
echo "foreign-server=$($h exec other nslookup web 10.90.0.1 >/dev/null 2>&1; echo $?)"
$h network rm front 2>err; echo "rm-in-use=$?"
echo "rm-in-use-error=$(cat err)"
bridge=$($h network inspect front | grep -o '"com.docker.network.bridge.name": "[^"]*"' | cut -d'"' -f4)
ip -o link show $bridge >/dev/null 2>&1 && echo "bridge=up"
$h rm -f web visitor db other >/dev/null
$h network rm front back >/dev/null; echo "rm=$?"
ip -o link show $bridge >/dev/null 2>&1 || echo "bridge=gone"
echo "rules=$(nft list table ip hull | grep -c 'hull-')"
echo "ls-after=$($h network ls | awk 'NR > 1 { print $2 }')"
$h network rm bridge 2>err; echo "rm-default=$? $(cat err)"
$h network create spare >/dev/null
$h network create busy >/dev/null
$h run -d --name keeper --network busy --rootfs $R -- sleep 600 >/dev/null
echo "prune=$($h network prune -f | tr '\n' '|')"
echo "left=$($h network ls | awk 'NR > 1 { print $2 }' | tr '\n' ' ')"
$h rm -f keeper >/dev/null
$h run -d --name mover --network none --rootfs $R -- sh -c 'ip -o -4 addr show eth0 | grep -o "inet [0-9.]*"' >/dev/null
timeout 180 $h wait mover >/dev/null
$h network connect --alias mv busy mover; echo "connect=$?"
echo "connect-again=$($h network connect busy mover 2>&1)"
$h start mover >/dev/null; timeout 180 $h wait mover >/dev/null
echo "moved=$($h logs mover)"
$h network disconnect busy mover; echo "disconnect=$? $($h network inspect busy | grep -c mover)"
$h run -d --name runner --network none --rootfs $R -- sleep 600 >/dev/null
echo "running-refused=$($h network connect busy runner 2>&1)"
$h rm -f runner >/dev/null
$h run --rm --rootfs $R -- true
$h run -d --name done --rootfs $R -- true >/dev/null
timeout 180 $h wait done >/dev/null
echo "idle-before-prune=$(ip -o link show type bridge | grep -c ' hull') $(nft list tables | grep -c hull)"
$h system prune -f >/dev/null; echo "system-prune=$?"
echo "idle-after-prune=$(ip -o link show type bridge | grep -c ' hull') $(nft list tables | grep -c hull) $($h ps -aq | wc -l) $($h network ls -q | wc -l)"
"#,
    );
    assert_eq!(facts(&output, "create"), ["0"], "{output}");
    assert_eq!(
        facts(&output, "overlap"),
        ["1 hull: --subnet 10.91.0.128/25 overlaps network back's 10.91.0.0/24"],
        "{output}"
    );
    assert_eq!(facts(&output, "ls"), ["back bridge front "], "{output}");
    assert_eq!(
        facts(&output, "same-network"),
        ["root:x:0:0:root:/root:/bin/sh"],
        "{output}"
    );
    // No way across networks, in either direction, nor from the default.
    assert_eq!(facts(&output, "from-back"), ["1"], "{output}");
    assert_eq!(facts(&output, "from-default"), ["1"], "{output}");
    assert_eq!(facts(&output, "to-back"), ["1"], "{output}");
    assert_eq!(facts(&output, "within"), ["0"], "{output}");
    // The network's gateway answers the names, aliases and short IDs of the
    // containers on it, as they are named now; not those of another
    // network, nor to containers of another network.
    assert_eq!(
        facts(&output, "resolv"),
        ["nameserver 10.90.0.1"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "by-name"),
        ["root:x:0:0:root:/root:/bin/sh"],
        "{output}"
    );
    assert_eq!(facts(&output, "by-alias"), ["(10.90.0.2):"], "{output}");
    // A legacy link: the linked container's alias and name in /etc/hosts;
    // refused, before anything is made, for a container on no network of
    // this one's, or none at all.
    assert_eq!(
        facts(&output, "link"),
        ["10.90.0.2\tlegacy|10.90.0.2\tweb"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "link-elsewhere"),
        ["125 hull: cannot link to db: it is on none of this container's networks (front)"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "link-nosuch"),
        ["125 hull: cannot link to nosuch: no such container: nosuch"],
        "{output}"
    );
    assert_eq!(facts(&output, "by-short-id"), ["(10.90.0.3):"], "{output}");
    assert_eq!(facts(&output, "renamed"), ["(10.90.0.3):"], "{output}");
    assert_ne!(facts(&output, "other-network-name"), ["0"], "{output}");
    assert_ne!(facts(&output, "foreign-server"), ["0"], "{output}");
    assert_eq!(facts(&output, "rm-in-use"), ["1"], "{output}");
    assert_eq!(
        facts(&output, "rm-in-use-error"),
        ["hull: network front is in use by web, visitor; remove them first"],
        "{output}"
    );
    assert_eq!(facts(&output, "bridge"), ["up", "gone"], "{output}");
    assert_eq!(facts(&output, "rm"), ["0"], "{output}");
    assert_eq!(facts(&output, "rules"), ["0"], "{output}");
    assert_eq!(facts(&output, "ls-after"), ["bridge"], "{output}");
    assert_eq!(
        facts(&output, "prune"),
        ["Deleted Networks:|spare||"],
        "{output}"
    );
    assert_eq!(facts(&output, "left"), ["bridge busy "], "{output}");
    // A stopped container moves onto a network, and off it again.
    assert_eq!(facts(&output, "connect"), ["0"], "{output}");
    assert_eq!(
        facts(&output, "connect-again"),
        ["hull: container mover is already on network busy"],
        "{output}"
    );
    assert_eq!(facts(&output, "moved"), ["inet 10.90.1.2"], "{output}");
    assert_eq!(facts(&output, "disconnect"), ["0 0"], "{output}");
    assert_eq!(
        facts(&output, "running-refused"),
        [
            "hull: container runner is running: hull cannot connect a running VM's network; \
          `hull stop runner` first"
        ],
        "{output}"
    );
    // With nothing left running, system prune removes the exited container,
    // the idle networks and every bridge and rule hull set up for them.
    assert_eq!(facts(&output, "idle-before-prune"), ["2 1"], "{output}");
    assert_eq!(facts(&output, "system-prune"), ["0"], "{output}");
    assert_eq!(facts(&output, "idle-after-prune"), ["0 0 0 1"], "{output}");
    assert_eq!(
        facts(&output, "rm-default"),
        ["1 hull: network bridge is hull's default and cannot be removed"],
        "{output}"
    );
}

#[test]
fn a_container_on_two_networks_reaches_and_is_reached_on_both() {
    let output = in_test_host(
        r#"
$h network create front >/dev/null; $h network create back >/dev/null
$h run -d --name db --network back --rootfs $R -- httpd -f -p 80 -h /etc >/dev/null
$h run -d --name web --network front --network back --network-alias site -p 8090:80 \
    --rootfs $R -- httpd -f -p 80 -h /etc >/dev/null
$h run -d --name fe --network front --rootfs $R -- sleep 600 >/dev/null
echo "nics=$($h exec web sh -c 'ip -o -4 addr show | grep -c eth')"
echo "route=$($h exec web ip route | grep default | awk '{print $5}')"
wait_for "$h exec web wget -q -O /dev/null http://db/hostname 2>/dev/null"
echo "web-db=$($h exec web wget -q -O - http://db/hostname) $($h inspect -f '{{.Config.Hostname}}' db)"
echo "fe-site=$($h exec fe wget -q -O - http://site/hostname) $($h inspect -f '{{.Config.Hostname}}' web)"
echo "fe-db=$($h exec fe ping -c 1 -W 2 db >/dev/null 2>&1; echo $?)"
wait_for 'wget -q -O /dev/null http://127.0.0.1:8090/hostname 2>/dev/null'
echo "published=$(wget -q -O - http://127.0.0.1:8090/hostname)"
echo "ps=$($h ps --filter name=web --format '{{.Networks}}')"
$h create --name idle --network back --rootfs $R -- true >/dev/null
echo "members=$($h network inspect back -f '{{len .Containers}}')"
$h rm idle >/dev/null
$h stop web >/dev/null; $h network disconnect back web
echo "disconnect=$? $($h inspect -f '{{.HostConfig.NetworkMode}} {{len .NetworkSettings.Networks}}' web)"
$h network connect back web; echo "connect=$? $($h ps -a --filter name=web --format '{{.Networks}}')"
$h run --rm --network none --network back --rootfs $R -- true 2>err; echo "none-and=$? $(cat err)"
$h rm -f web db fe >/dev/null
echo "taps=$(ip -o link show | grep -c htap)"
$h network rm front back >/dev/null; echo "rm=$?"
"#,
    );
    let fact = |key: &str| facts(&output, key).join("|");
    assert_eq!(fact("nics"), "2", "{output}");
    assert_eq!(fact("route"), "eth0", "{output}");
    // Each name answers with the container's own host name.
    let pair = |key: &str| {
        let value = fact(key);
        let (seen, expected) = value.split_once(' ').expect("two words");
        assert_eq!(seen, expected, "{output}");
        seen.to_owned()
    };
    pair("web-db");
    let web = pair("fe-site");
    // fe shares no network with db: no name, no route.
    assert_eq!(fact("fe-db"), "1", "{output}");
    assert_eq!(fact("published"), web, "{output}");
    assert_eq!(fact("ps"), "front,back", "{output}");
    // The running ones: a created container is on no network yet.
    assert_eq!(fact("members"), "2", "{output}");
    assert_eq!(fact("disconnect"), "0 front 1", "{output}");
    assert_eq!(fact("connect"), "0 front,back", "{output}");
    assert_eq!(
        fact("none-and"),
        "125 hull: --network none is loopback only: it goes with no other network",
        "{output}"
    );
    assert_eq!(fact("taps"), "0", "{output}");
    assert_eq!(fact("rm"), "0", "{output}");
}

#[test]
fn a_hostile_container_cannot_spoof_its_neighbours_or_flood_a_published_port() {
    // The spoofer has CAP_NET_ADMIN in its guest (which it must be assumed
    // to own): it claims the victim's address (the kernel's gratuitous ARP
    // on link up, arp_notify), sends from another's address, takes the
    // victim's MAC, and speaks IPv6. None of it may reach the client, the
    // victim or the host. Then a flood of idle connections to the victim's
    // published port, more than the proxy relays at once: the victim's
    // monitor keeps its threads and descriptors, exec and the name server
    // answer, and a new client is served once idle ones can make room.
    let output = in_test_host(
        r#"
serve='mkdir /www; hostname > /www/index.html; exec httpd -f -p 80 -h /www'
$h run -d --name victim --hostname victim --ip 10.89.0.2 -p 8080:80 --rootfs $R -- sh -c "$serve" >/dev/null
$h run -d --name spoofer --hostname spoofer --ip 10.89.0.3 --cap-add NET_ADMIN \
    --sysctl net.ipv4.conf.all.arp_notify=1 --rootfs $R -- sh -c "$serve" >/dev/null
$h run -d --name client --ip 10.89.0.4 --rootfs $R -- sleep 600 >/dev/null
wait_for 'wget -q -O /dev/null http://10.89.0.2/ 2>/dev/null'
wait_for 'wget -q -O /dev/null http://10.89.0.3/ 2>/dev/null'
wait_for "$h exec client true 2>/dev/null"
victim_mac=02:68:0a:59:00:02
echo "tables=$(nft list tables | grep -c 'table bridge hull')"
fetch() { $h exec client timeout 10 wget -q -O - http://10.89.0.2/ 2>&1; }
echo "before=$(fetch)"
# The counters of the container's kernel: ICMP echo requests received.
echoes() { $h exec $1 cat /proc/net/snmp | awk '/^Icmp:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == "InEchos") n = i } else print $n }'; }
echoes6() { $h exec $1 cat /proc/net/snmp6 | awk '$1 == "Icmp6InEchos" { print $2 }'; }
# Its own address works.
echo "own=$($h exec spoofer ping -c 1 -W 5 10.89.0.4 >/dev/null 2>&1; echo $?)"
# Another's source address: the client must not see these echo requests.
before=$(echoes client)
$h exec spoofer sh -c 'ip addr add 10.89.0.50/16 dev eth0; ping -c 3 -W 1 -I 10.89.0.50 10.89.0.4' >/dev/null 2>&1
echo "spoofed-ip-echoes=$(( $(echoes client) - before ))"
# IPv6 (all-nodes multicast): dropped, as router advertisements would be.
before=$(echoes6 client)
$h exec spoofer ping6 -c 3 -W 1 -I eth0 ff02::1 >/dev/null 2>&1
echo "ipv6-echoes=$(( $(echoes6 client) - before ))"
# The victim's address, announced by gratuitous ARP: caches keep the
# victim's MAC.
$h exec spoofer sh -c 'ip addr add 10.89.0.2/32 dev eth0; ifconfig eth0 down; ifconfig eth0 up; sleep 2' >/dev/null 2>&1
echo "client-arp=$($h exec client cat /proc/net/arp | awk '$1 == "10.89.0.2" { print $4 }')"
echo "host-arp=$(ip neigh show 10.89.0.2 dev hull0 | grep -o 'lladdr [^ ]*' | cut -d' ' -f2)"
echo "after-arp=$(fetch)"
# The victim's MAC: the bridge must not learn it on the spoofer's port.
$h exec spoofer sh -c "ifconfig eth0 hw ether $victim_mac; ping -c 3 -W 1 10.89.0.1; ping -c 3 -W 1 10.89.0.4" >/dev/null 2>&1
victim_tap=htap$($h inspect -f '{{.Id}}' victim | cut -c1-11)
echo "fdb=$(bridge fdb show br hull0 | grep "^$victim_mac " | grep -o 'dev [^ ]*' | cut -d' ' -f2 | sort -u | sed "s/$victim_tap/victim-tap/")"
echo "host-after-mac=$(wget -q -T 5 -O - http://10.89.0.2/ 2>&1)"
echo "client-after-mac=$(fetch)"
# The flood: 300 connections that never send, the proxy relays 256.
out=$(mktemp)
$flood 127.0.0.1:8080 300 >$out & flooder=$!
wait_for "[ -s $out ]"
echo "flood-$(cat $out)"
monitor=$(ps -eo pid=,args= | grep "[_]_monitor .*$($h inspect -f '{{.Id}}' victim)" | awk '{ print $1 }')
echo "monitor-threads=$(ls /proc/$monitor/task | wc -l)"
echo "monitor-fds=$(ls /proc/$monitor/fd | wc -l)"
echo "flood-exec=$($h exec victim echo ok 2>&1)"
echo "flood-dns=$($h exec client nslookup victim 2>/dev/null | grep -c 'Address.*10\.89\.0\.2')"
start=$(date +%s)
echo "flood-served=$(wget -q -T 120 -O - http://127.0.0.1:8080/ 2>&1)"
echo "flood-wait=$(( $(date +%s) - start ))"
kill $flooder
$h rm -f victim spoofer client >/dev/null
echo "tables-after=$(nft list tables | grep -c 'table bridge hull')"
"#,
    );
    let fact = |key: &str| facts(&output, key).join("|");
    assert_eq!(fact("tables"), "1", "{output}");
    assert_eq!(fact("before"), "victim", "{output}");
    assert_eq!(fact("own"), "0", "{output}");
    assert_eq!(fact("spoofed-ip-echoes"), "0", "{output}");
    assert_eq!(fact("ipv6-echoes"), "0", "{output}");
    assert_eq!(fact("client-arp"), "02:68:0a:59:00:02", "{output}");
    assert_eq!(fact("host-arp"), "02:68:0a:59:00:02", "{output}");
    assert_eq!(fact("after-arp"), "victim", "{output}");
    assert_eq!(fact("fdb"), "victim-tap", "{output}");
    assert_eq!(fact("host-after-mac"), "victim", "{output}");
    assert_eq!(fact("client-after-mac"), "victim", "{output}");
    assert_eq!(fact("flood-established"), "300", "{output}");
    // A thread per direction of each connection before; two descriptors
    // for each of at most 256 now.
    let number = |key: &str| fact(key).parse::<usize>().expect(&output);
    assert!(number("monitor-threads") < 40, "{output}");
    assert!(number("monitor-fds") < 2 * 256 + 64, "{output}");
    assert_eq!(fact("flood-exec"), "ok", "{output}");
    assert_eq!(fact("flood-dns"), "1", "{output}");
    assert_eq!(fact("flood-served"), "victim", "{output}");
    // Served once the flood has been idle for 30 s, not after it ends.
    assert!(number("flood-wait") < 120, "{output}");
    // The rules went with the containers.
    assert_eq!(fact("tables-after"), "0", "{output}");
}
