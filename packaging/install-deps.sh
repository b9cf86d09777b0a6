#!/usr/bin/env bash
# Installs every Debian 12 package brfusion's build, tests and demo need. Safe to run any number
# of times: it installs only what is missing and says what it does. Needs root.
#
#   packaging/install-deps.sh
#
# Each group names what needs it; a component that needs more adds its packages here (one list
# for the whole project, so that CI and a newcomer's machine get the same thing).
set -euo pipefail

build=(cmake make g++ pkg-config libboost1.81-dev nlohmann-json3-dev catch2 libvirt-dev libxml2-dev)
ovs=(openvswitch-switch openvswitch-common)       # ovs-bridge tests, the demo, every OVS sandbox
netns=(iproute2 ethtool procps iputils-ping iperf3)  # namespaces, TX offload, process checks, traffic tests and benchmarks
nat=(nftables)                                    # brfusion-shim's host NAT and published ports
docker=(docker.io containerd runc busybox-static docker-compose)  # emulated VMs running dockerd + the plugin; the busybox test image; compose's test
qemu=(qemu-system-x86 linux-image-amd64 cpio)     # real VMs (qmp backend, QemuVm): QEMU, the guest kernel, its initramfs
libvirt=(libvirt-daemon-system)                   # the libvirt backend's tests: libvirtd, virtlogd, the QEMU driver
bench=(gnuplot-nox nginx-light wrk memcached libmemcached-tools)  # bench/run's plots and application loads (it runs the servers itself)
fuzz=(clang libclang-rt-14-dev)                   # the sanitizer suite and the libFuzzer targets (integration/fuzz)
packages=("${build[@]}" "${ovs[@]}" "${netns[@]}" "${nat[@]}" "${docker[@]}" "${qemu[@]}" "${libvirt[@]}" "${bench[@]}" "${fuzz[@]}")

[ "$(id -u)" = 0 ] || { echo "install-deps: run as root (apt-get needs it)" >&2; exit 1; }

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages already installed"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# nginx and memcached are the benchmark's, started in the lab's namespaces: their packages' services
# must not start on this machine. Debian's way: a policy-rc.d that refuses, while apt runs (unless
# the machine has one already, as Debian's container images do). On a machine booted by systemd
# they stay enabled for its next boot: systemctl disable nginx memcached, if they should not run.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
