// Runs inside the model's unit and checks its isolation from the inside (issue 6 item 4). Writes
// one line per check ("ok NAME detail" / "FAIL NAME detail") to the file given as argv[1] (in the
// bound socket directory) and exits 0 only when every check holds:
//   net.interfaces   /proc/net/dev lists only lo
//   net.tcp, net.udp socket(AF_INET/AF_INET6, STREAM/DGRAM) is refused
//   fs.root          the root cannot be written
//   fs.supervisor    the supervisor's files (the host path given as argv[2]) are not visible
//   dev.tpm, dev.sev /dev/tpm0, /dev/tpmrm0, /dev/sev-guest, /dev/tdx_guest are absent
//   caps             CapEff, CapPrm, CapBnd and CapAmb in /proc/self/status are all zero
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string out;
bool all_ok = true;

void Check(bool ok, const std::string& name, const std::string& detail) {
  out += (ok ? "ok " : "FAIL ") + name + " " + detail + "\n";
  all_ok = all_ok && ok;
}

std::string Slurp(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  // Network: only lo.
  std::string dev = Slurp("/proc/net/dev"), ifaces;
  std::istringstream lines(dev);
  std::string line;
  int n = 0;
  bool only_lo = true;
  while (std::getline(lines, line)) {
    if (++n <= 2) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    ifaces += name + ",";
    only_lo = only_lo && name == "lo";
  }
  Check(only_lo && !ifaces.empty(), "net.interfaces", ifaces);
  for (auto [family, fname] : {std::pair{AF_INET, "inet"}, std::pair{AF_INET6, "inet6"}}) {
    for (auto [type, tname] : {std::pair{SOCK_STREAM, "tcp"}, std::pair{SOCK_DGRAM, "udp"}}) {
      int fd = socket(family, type, 0);
      const int err = errno;
      Check(fd < 0, std::string("net.") + tname + "." + fname,
            fd < 0 ? strerror(err) : "socket created");
      if (fd >= 0) close(fd);
    }
  }
  int wfd = open("/probe-write-test", O_WRONLY | O_CREAT, 0600);
  const int werr = errno;
  Check(wfd < 0, "fs.root", wfd < 0 ? strerror(werr) : "root is writable");
  if (wfd >= 0) close(wfd);
  Check(access(argv[2], F_OK) != 0, "fs.supervisor", argv[2]);
  for (const char* d : {"/dev/tpm0", "/dev/tpmrm0", "/dev/sev-guest", "/dev/tdx_guest"}) {
    Check(access(d, F_OK) != 0, std::string("dev.") + (d + 5),
          access(d, F_OK) == 0 ? "present" : "absent");
  }
  std::string status = Slurp("/proc/self/status");
  for (const char* cap : {"CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"}) {
    auto at = status.find(cap);
    std::string value = at == std::string::npos ? "?" : status.substr(at + strlen(cap), 18);
    value.erase(0, value.find_first_not_of(" \t"));
    value = value.substr(0, 16);
    Check(value == "0000000000000000", std::string("caps.") + cap, value);
  }
  std::ofstream(argv[1]) << out;
  std::fputs(out.c_str(), stdout);
  return all_ok ? 0 : 1;
}
