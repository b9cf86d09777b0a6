#include "brfusion/testing/qemu_vm.hpp"

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/emulated_vm.hpp"  // test_image_tarball

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace brfusion::testing {

namespace {

const std::string kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::string& data) {
    std::string out;
    size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8) | static_cast<unsigned char>(data[i + 2]);
        out += {kBase64[v >> 18], kBase64[(v >> 12) & 63], kBase64[(v >> 6) & 63], kBase64[v & 63]};
    }
    if (i + 1 == data.size()) {
        const unsigned v = static_cast<unsigned char>(data[i]) << 16;
        out += {kBase64[v >> 18], kBase64[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == data.size()) {
        const unsigned v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8);
        out += {kBase64[v >> 18], kBase64[(v >> 12) & 63], kBase64[(v >> 6) & 63], '='};
    }
    return out;
}

std::string base64_decode(const std::string& text) {
    std::string out;
    unsigned value = 0;
    int bits = 0;
    for (char c : text) {
        const auto at = kBase64.find(c);
        if (at == std::string::npos) continue;  // '=' and line ends
        value = (value << 6) | static_cast<unsigned>(at);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((value >> bits) & 0xff);
        }
    }
    return out;
}

int connect_unix(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) return fd;
    ::close(fd);
    return -1;
}

std::string tail(const std::string& text, size_t lines) {
    size_t at = text.size();
    while (lines-- > 0 && at > 0) at = text.rfind('\n', at - 1);
    return at == std::string::npos ? text : text.substr(at);
}

}  // namespace

QemuVm::QemuVm(QemuVmOptions options) : options_(std::move(options)) {
    std::filesystem::create_directories(options_.dir);
    const std::string dir = options_.dir;
    const std::string initramfs = dir + "/initramfs.cpio.gz";
    const std::string kernel = trim_end(run_checked(std::string(BRFUSION_GUEST_DIR) + "/make-initramfs " + initramfs));

    // One vCPU, but room for two: TCG emits the guest's memory barriers as host fences only when
    // the machine may have more than one vCPU (QEMU: tcg_cpu_init_cflags(cpu, max_cpus > 1)).
    // Without them the guest's virtio driver and QEMU's device model, on two host threads, lose
    // notifications: a NIC's transmit ring stalled for good under iperf3 with 256-B writes, the
    // guest holding packets QEMU never looked for (x-query-virtio-queue-status).
    const std::string cmdline = "console=ttyS0 panic=-1 quiet brfusion.name=" + options_.name + " brfusion.init=" + BRFUSION_GUEST_DIR + "/guest-init";
    // Eight ports per slot of pcie.0 (multifunction), from slot 0x10: up to 112 ports.
    const auto port_address = [](int port) {
        char address[32];
        std::snprintf(address, sizeof(address), "0x%x.0x%x", 0x10 + port / 8, port % 8);  // QEMU reads them as hex
        return std::string(address);
    };
    const auto started = std::chrono::steady_clock::now();
    if (!options_.libvirt_uri.empty()) {
        std::string xml = "<domain type='qemu'>\n  <name>" + options_.name + "</name>\n  <memory unit='MiB'>" + std::to_string(options_.memory_mb) +
                          "</memory>\n  <vcpu current='1'>2</vcpu>\n"
                          "  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>" + kernel + "</kernel><initrd>" + initramfs +
                          "</initrd><cmdline>" + cmdline + "</cmdline></os>\n"
                          // ACPI: without it libvirt passes -no-acpi and hot-plug turns native (5 s per unplug).
                          "  <features><acpi/><apic/></features>\n  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>\n"
                          "  <on_reboot>destroy</on_reboot>\n"
                          // QEMU as root: it reads the host's root over 9p, wherever the build is.
                          "  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>\n  <devices>\n"
                          "    <controller type='usb' model='none'/>\n    <memballoon model='none'/>\n"
                          "    <controller type='pci' index='0' model='pcie-root'/>\n";
        for (int port = 0; port < options_.root_ports; ++port) {
            const std::string address = port_address(port);
            xml += "    <controller type='pci' index='" + std::to_string(port + 1) + "' model='pcie-root-port'><address type='pci' domain='0x0000' bus='0x00' slot='" +
                   address.substr(0, address.find('.')) + "' function='" + address.substr(address.find('.') + 1) + "'" +
                   (port % 8 == 0 ? " multifunction='on'" : "") + "/></controller>\n";
        }
        // The 9p root and the serial ports on pcie.0 itself, apart from the hot-plug ports.
        xml += "    <filesystem type='mount' accessmode='passthrough'><source dir='/'/><target dir='hostroot'/><readonly/>"
               "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></filesystem>\n"
               "    <controller type='virtio-serial' index='0'><address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/></controller>\n"
               "    <serial type='file'><source path='" + dir + "/console.log'/><target port='0'/></serial>\n"
               "    <channel type='unix'><source mode='bind' path='" + dir + "/exec.sock'/><target type='virtio' name='org.brfusion.exec.0'/></channel>\n";
        if (!options_.primary_nic.tap.empty())
            xml += "    <interface type='ethernet'><mac address='" + options_.primary_nic.mac + "'/><target dev='" + options_.primary_nic.tap +
                   "' managed='no'/><model type='virtio'/><address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></interface>\n";
        if (!options_.shim_channel.empty())
            xml += "    <channel type='unix'><source mode='connect' path='" + options_.shim_channel +
                   "'><reconnect enabled='yes' timeout='1'/></source><target type='virtio' name='org.brfusion.shim.0'/></channel>\n";
        xml += "  </devices>\n</domain>\n";
        std::ofstream(dir + "/domain.xml") << xml;
        run_checked("virsh -c " + options_.libvirt_uri + " create " + dir + "/domain.xml");
    } else {
        std::vector<std::string> argv = {
            "qemu-system-x86_64", "-name", options_.name, "-machine", "q35,accel=tcg", "-cpu", "max", "-smp", "1,maxcpus=2", "-m", std::to_string(options_.memory_mb),
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", kernel, "-initrd", initramfs, "-append", cmdline,
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-qmp", "unix:" + qmp_socket() + ",server=on,wait=off",
            "-qmp", "unix:" + dir + "/control.qmp,server=on,wait=off",  // the test's own (a monitor serves one client)
            "-device", "virtio-serial-pci,id=serial0",
            "-chardev", "socket,id=exec,path=" + dir + "/exec.sock,server=on,wait=off",
            "-device", "virtserialport,chardev=exec,name=org.brfusion.exec.0"};
        if (!options_.shim_channel.empty()) {
            // The shim listens; QEMU connects, and again after a shim restart.
            argv.insert(argv.end(), {"-chardev", "socket,id=shim,path=" + options_.shim_channel + ",reconnect=1", "-device",
                                     "virtserialport,chardev=shim,name=org.brfusion.shim.0"});
        }
        if (!options_.primary_nic.tap.empty()) {
            argv.insert(argv.end(), {"-netdev", "tap,id=primary,ifname=" + options_.primary_nic.tap + ",script=no,downscript=no", "-device",
                                     "virtio-net-pci,netdev=primary,mac=" + options_.primary_nic.mac + ",bus=pcie.0,addr=0x7"});
            argv.insert(argv.begin(), {"ip", "netns", "exec", options_.primary_nic.netns});  // where the TAP is
        }
        for (int port = 0; port < options_.root_ports; ++port)
            argv.insert(argv.end(), {"-device", "pcie-root-port,id=bfport" + std::to_string(port + 1) + ",chassis=" + std::to_string(port + 1) +
                                                    ",bus=pcie.0,addr=" + port_address(port) + (port % 8 == 0 ? ",multifunction=on" : "")});
        qemu_.start(argv, dir + "/console.log");
    }
    // The agent answers once guest-init runs; until then the socket may not even exist.
    const bool up = wait_until(
        [&] {
            if (agent_ < 0) agent_ = connect_unix(dir + "/exec.sock");
            if (agent_ < 0) return false;
            return console().find("is up") != std::string::npos;
        },
        std::chrono::minutes(3));
    if (!up) {
        const std::string log = console();
        if (!options_.libvirt_uri.empty()) run("virsh -c " + options_.libvirt_uri + " destroy " + options_.name);
        throw std::runtime_error("QEMU VM " + options_.name + " did not boot within 3 minutes; console:\n" + tail(log, 30));
    }
    if (exec("true").exit_code != 0) throw std::runtime_error("QEMU VM " + options_.name + ": the exec agent does not work");
    boot_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
}

void QemuVm::set_paused(bool paused) {
    if (!options_.libvirt_uri.empty()) {
        run_checked("virsh -c " + options_.libvirt_uri + (paused ? " suspend " : " resume ") + options_.name);
        return;
    }
    const int monitor = connect_unix(options_.dir + "/control.qmp");
    if (monitor < 0) throw std::runtime_error("QEMU VM " + options_.name + ": cannot connect to its control monitor");
    const std::string commands = std::string("{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"") + (paused ? "stop" : "cont") + "\"}\n";
    std::string answers;
    bool sent = ::send(monitor, commands.data(), commands.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(commands.size());
    // Two answers: one per command ("return" or "error"); events may come between them.
    const auto answered = [&] {
        std::size_t count = 0;
        for (std::size_t at = answers.find("\"return\""); at != std::string::npos; at = answers.find("\"return\"", at + 1)) ++count;
        return count >= 2 || answers.find("\"error\"") != std::string::npos;
    };
    while (sent && !answered()) {
        pollfd readable{monitor, POLLIN, 0};
        char chunk[4096];
        const ssize_t got = ::poll(&readable, 1, 10000) == 1 ? ::recv(monitor, chunk, sizeof chunk, 0) : -1;
        if (got <= 0) break;
        answers.append(chunk, static_cast<std::size_t>(got));
    }
    ::close(monitor);
    if (!answered() || answers.find("\"error\"") != std::string::npos)
        throw std::runtime_error("QEMU VM " + options_.name + ": " + (paused ? "stop" : "cont") + " failed: " + answers);
}

QemuVm::~QemuVm() {
    if (agent_ >= 0) ::close(agent_);
    if (!options_.libvirt_uri.empty()) run("virsh -c " + options_.libvirt_uri + " destroy " + options_.name);
    qemu_.stop();
}

std::string QemuVm::console() const {
    if (options_.libvirt_uri.empty()) return qemu_.log();
    std::ifstream file(options_.dir + "/console.log");
    return std::string(std::istreambuf_iterator<char>(file), {});
}

CommandResult QemuVm::exec(const std::string& command, std::chrono::seconds limit) {
    std::lock_guard lock(agent_mutex_);
    const std::string request = base64_encode(command) + "\n";
    if (::send(agent_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
        throw std::runtime_error("QEMU VM " + options_.name + ": cannot write to the exec agent");
    const auto deadline = std::chrono::steady_clock::now() + limit;
    size_t end;
    while ((end = buffer_.find('\n')) == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        pollfd readable{agent_, POLLIN, 0};
        if (left <= 0 || ::poll(&readable, 1, static_cast<int>(left)) <= 0)
            throw std::runtime_error("QEMU VM " + options_.name + ": no answer to '" + command + "' within " + std::to_string(limit.count()) + " s");
        char chunk[65536];
        const ssize_t got = ::recv(agent_, chunk, sizeof(chunk), 0);
        if (got <= 0) throw std::runtime_error("QEMU VM " + options_.name + ": the exec agent went away; console:\n" + tail(console(), 20));
        buffer_.append(chunk, static_cast<size_t>(got));
    }
    const std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 1);
    const auto space = line.find(' ');
    CommandResult result;
    result.exit_code = std::stoi(line.substr(0, space));
    if (space != std::string::npos) result.output = base64_decode(line.substr(space + 1));
    return result;
}

namespace {
const std::string kGuestDocker = "/usr/bin/docker";  // Debian's CLI, as the daemon
}  // namespace

void start_guest_dockerd(QemuVm& vm, const std::string& dockerd_flags) {
    // -r: a process the agent started is reparented to guest-init, which leaves zombies.
    const auto started = vm.exec("pgrep -r R,S,D -x containerd >/dev/null || (containerd >>/tmp/containerd.log 2>&1 &);"
                                 " (dockerd " + dockerd_flags + " >>/tmp/dockerd.log 2>&1 &);"
                                 " for i in $(seq 1 240); do " + kGuestDocker + " info >/dev/null 2>&1 && exit 0; sleep 0.5; done; cat /tmp/dockerd.log; exit 1",
                                 std::chrono::seconds(300));
    if (started.exit_code != 0) throw std::runtime_error(vm.name() + ": dockerd did not come up: " + started.output);
}

void load_guest_test_image(QemuVm& vm, const std::string& image_dir) {
    const auto imported = vm.exec(kGuestDocker + " import -c 'ENV PATH=/bin' " + test_image_tarball(image_dir) + " brfusion-test:latest");
    if (imported.exit_code != 0) throw std::runtime_error(vm.name() + ": cannot load the test image: " + imported.output);
}

void start_guest_plugin(QemuVm& vm, const std::string& binary) {
    // Without the old socket file, the wait below sees the new plugin's.
    const auto started = vm.exec("rm -f /run/docker/plugins/brfusion.sock; (" + binary + " --channel virtio-serial:org.brfusion.shim.0 >>/tmp/plugin.log 2>&1 &);"
                                 " for i in $(seq 1 100); do [ -S /run/docker/plugins/brfusion.sock ] && exit 0; sleep 0.1; done; cat /tmp/plugin.log; exit 1");
    if (started.exit_code != 0) throw std::runtime_error(vm.name() + ": brfusion-plugin did not come up: " + started.output);
}

}  // namespace brfusion::testing
