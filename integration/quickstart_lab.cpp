// The quickstart's body: brfusion's main job on this machine, narrated. Two emulated VMs (each a
// network + mount namespace running its own dockerd and brfusion-plugin) and a "host" (private Open
// vSwitch and brfusion-shim in their own namespace). In each VM: a brfusion network, a container;
// the containers talk over the NICs the host plugged for them. Everything is removed at the end.

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/docker_lab.hpp"

#include <iostream>

#include <unistd.h>

using namespace brfusion::testing;

namespace {

void step(const std::string& title) { std::cout << "\n== " << title << "\n" << std::flush; }

// Shows the command and its output; stops the quickstart if it fails.
std::string show(const std::string& where, const std::string& command, const CommandResult& result) {
    std::cout << where << "$ " << command << "\n" << result.output << std::flush;
    if (result.exit_code != 0) throw std::runtime_error(command + " failed in " + where);
    return result.output;
}

std::string docker(const EmulatedVm& vm, const std::string& label, const std::string& args) { return show(label, "docker " + args, vm.docker(args)); }

}  // namespace

int main() {
    try {
        step("starting the host (Open vSwitch + brfusion-shim) and two VMs (dockerd + brfusion-plugin); about 10 s");
        DockerLab lab({BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY}, "/tmp/brfusion-quickstart-" + std::to_string(::getpid()));
        std::cout << "host: OVS and brfusion-shim in netns " << lab.host.netns() << "; VMs: " << lab.vm1->name() << ", " << lab.vm2->name()
                  << "\nhost networks: lab 198.51.100.0/24 (vm1, vm2), lab2 203.0.113.0/24 (vm1)\n";

        step("a brfusion network in each VM");
        docker(*lab.vm1, "vm1", "network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab web");
        docker(*lab.vm2, "vm2", "network create -d brfusion --ipam-driver brfusion web");

        step("a web server in vm1, a client in vm2, each with its own host-provided NIC");
        docker(*lab.vm1, "vm1", "run -d --name server --network web brfusion-test httpd -f -p 80 -h /www");
        docker(*lab.vm2, "vm2", "run -d --name client --network web brfusion-test sleep 3600");
        const std::string server_ip = docker(*lab.vm1, "vm1", "inspect -f '{{.NetworkSettings.Networks.web.IPAddress}}' server");
        const std::string ip = server_ip.substr(0, server_ip.find('\n'));
        docker(*lab.vm1, "vm1", "exec server ip -o link show eth0");
        show("vm1", "ip -o link show master docker0   (no veth on Docker's bridge)", lab.vm1->exec("ip -o link show master docker0"));

        step("the host's view: one OVS port per container, labelled with its VM, network and MAC");
        std::cout << "host$ ovs-vsctl --columns=name,external_ids find Interface external_ids:brfusion-vm=vm1\n"
                  << lab.host.vsctl("--columns=name,external_ids find Interface external_ids:brfusion-vm=vm1");
        std::cout << "host$ brfusionctl nics\n" << lab.ctl("nics");

        step("the containers talk across VMs, over the host's Open vSwitch");
        docker(*lab.vm2, "vm2", "exec client ping -c 3 " + ip);
        docker(*lab.vm2, "vm2", "exec client wget -qO- http://" + ip + "/");

        step("removing the containers and networks");
        docker(*lab.vm1, "vm1", "rm -f server");
        docker(*lab.vm2, "vm2", "rm -f client");
        docker(*lab.vm1, "vm1", "network rm web");
        docker(*lab.vm2, "vm2", "network rm web");
        std::cout << "host$ brfusionctl nics\n" << lab.ctl("nics");
        step("done: the lab (namespaces, daemons, OVS, files) is removed as this program exits; nothing else was changed");
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "quickstart: " << e.what() << "\n";
        return 1;
    }
}
