// The Verilator emulator server: the SoC's byte stream bridged to a loopback TCP socket.
//
// The model (class Vtop) has a clock `clk`, a byte stream in (`rx__valid`, `rx__ready`,
// `rx__payload`), a byte stream out (`tx__valid`, `tx__ready`, `tx__payload`) and an `idle`
// output (nothing in flight: the model may sleep until the next byte arrives). It resets itself
// at power-on (EmulatorTop: a few clocks, during which it is neither idle nor ready).
// The harness listens on 127.0.0.1 only, prints "PORT <n>" on stdout, serves one client at a time
// (a new client finds the device as the previous one left it, like a board's serial port, once
// the device has executed everything the previous client sent and dropped a partial frame of it
// by its own byte timeout; output with no client is discarded) and
// clocks the model as fast as it can, touching the socket only every `--poll` cycles or as soon
// as the model goes idle. While the model is idle and no input is pending, it blocks in poll()
// instead of spinning.
// Statistics ("STATS cycles=... busy_s=... wall_s=... rx=... tx=...") go to stdout when a client
// disconnects, on SIGUSR1 and on exit (SIGTERM, SIGINT). An idle server whose parent process
// has exited stops by itself.

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

// Verilator escapes the "__" of Amaranth's flattened port names as "___05F".
#define RX_VALID rx___05Fvalid
#define RX_READY rx___05Fready
#define RX_PAYLOAD rx___05Fpayload
#define TX_VALID tx___05Fvalid
#define TX_READY tx___05Fready
#define TX_PAYLOAD tx___05Fpayload

namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_stats = 0;

void on_stop(int) { g_stop = 1; }
void on_stats(int) { g_stats = 1; }

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
    int port = 0;
    uint32_t poll = 1024;
    uint64_t max_cycles = 0;  // 0: unlimited
    pid_t parent = 0;         // the process that owns this server (0: the parent at start-up)
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = (i + 1 < argc) ? argv[i + 1] : nullptr;
        if (!std::strcmp(a, "--port") && v) {
            o.port = std::atoi(v);
            ++i;
        } else if (!std::strcmp(a, "--poll") && v) {
            o.poll = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
            ++i;
        } else if (!std::strcmp(a, "--max-cycles") && v) {
            o.max_cycles = std::strtoull(v, nullptr, 10);
            ++i;
        } else if (!std::strcmp(a, "--parent") && v) {
            o.parent = static_cast<pid_t>(std::atol(v));
            ++i;
        } else {
            std::fprintf(stderr, "usage: %s [--port N] [--poll CYCLES>=16] [--max-cycles N] "
                         "[--parent PID]\n", argv[0]);
            std::exit(2);
        }
    }
    if (o.port < 0 || o.port > 65535 || o.poll < 16) {
        std::fprintf(stderr, "bad options: port must be 0..65535, poll >= 16 cycles\n");
        std::exit(2);
    }
    return o;
}

int listen_loopback(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { std::perror("socket"); std::exit(1); }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        std::perror("bind 127.0.0.1");
        std::exit(1);
    }
    if (::listen(fd, 1) < 0) { std::perror("listen"); std::exit(1); }
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

int bound_port(int fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

// A byte FIFO that compacts itself instead of wrapping.
struct Buffer {
    std::vector<uint8_t> data = std::vector<uint8_t>(1 << 16);
    size_t head = 0, tail = 0;
    size_t size() const { return tail - head; }
    size_t room() const { return data.size() - tail; }
    void compact() {
        if (head == 0) return;
        std::memmove(data.data(), data.data() + head, size());
        tail -= head;
        head = 0;
    }
    void clear() { head = tail = 0; }
};

class Server {
public:
    Server(Vtop* top, const Options& opt)
        : top_(top), opt_(opt), parent_(opt.parent ? opt.parent : ::getppid()) {
        listen_fd_ = listen_loopback(opt.port);
        std::printf("PORT %d\n", bound_port(listen_fd_));
        std::fflush(stdout);
        // Statistics lines must never stall the model: a full pipe drops a line instead.
        ::fcntl(STDOUT_FILENO, F_SETFL, ::fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK);
        t0_ = Clock::now();
    }

    ~Server() {
        if (client_ >= 0) ::close(client_);
        ::close(listen_fd_);
    }

    // The link starts quiet. The model resets itself: until it is out of reset it is neither
    // ready for a byte nor idle, so the first steps simply wait.
    void reset() {
        top_->RX_VALID = 0;
        top_->TX_READY = 0;
    }

    void run() {
        while (!g_stop && (opt_.max_cycles == 0 || cycles_ < opt_.max_cycles)) {
            service();
            if (g_stats) { g_stats = 0; stats(); }
            if (top_->idle && rx_.size() == 0 && tx_.size() == 0) {
                wait_for_input();
                continue;
            }
            // up to --poll cycles, fewer once the model has gone idle with nothing to take in
            for (uint32_t i = 0; i < opt_.poll; ++i) {
                step();
                if (top_->idle && rx_.size() == 0) break;
            }
        }
        flush_tx(true);
        stats();
    }

private:
    // One clock: present the next input byte, offer room for an output byte, transfer on the edge.
    void step() {
        const bool in_valid = rx_.size() != 0;
        top_->RX_VALID = in_valid;
        top_->RX_PAYLOAD = in_valid ? rx_.data[rx_.head] : 0;
        const bool out_room = tx_.room() != 0;
        top_->TX_READY = out_room;
        top_->clk = 0;
        top_->eval();
        const bool take = in_valid && top_->RX_READY;
        const bool give = out_room && top_->TX_VALID;
        const uint8_t out = top_->TX_PAYLOAD;
        top_->clk = 1;
        top_->eval();
        ++cycles_;
        if (take) { ++rx_.head; ++rx_count_; }
        if (give) { tx_.data[tx_.tail++] = out; ++tx_count_; }
    }

    void accept_client() {
        int fd = ::accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(fd, F_SETFL, O_NONBLOCK);
        client_ = fd;
    }

    void drop_client() {
        ::close(client_);
        client_ = -1;
        tx_.clear();  // nobody listens: the bytes are lost, as on an unplugged serial line
        stats();
    }

    // Move bytes between the socket and the buffers; never blocks.
    void service() {
        if (client_ < 0) {
            tx_.clear();
            // The last client's bytes are all fed in first, and a partial frame it left behind
            // is dropped by the device's own byte timeout, in simulated cycles, before the next
            // client is served: a new client's bytes never complete another client's frame.
            if (rx_.size() != 0 || !top_->idle) return;
            accept_client();
            if (client_ < 0) return;
        }
        if (rx_.head == rx_.tail) rx_.clear();
        else if (rx_.room() < 4096) rx_.compact();
        if (rx_.room() != 0) {
            ssize_t n = ::recv(client_, rx_.data.data() + rx_.tail, rx_.room(), MSG_DONTWAIT);
            if (n > 0) rx_.tail += static_cast<size_t>(n);
            else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                drop_client();
                return;
            }
        }
        flush_tx(false);
    }

    void flush_tx(bool final) {
        if (client_ < 0) { tx_.clear(); return; }
        while (tx_.size() != 0) {
            ssize_t n = ::send(client_, tx_.data.data() + tx_.head, tx_.size(),
                               MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) { tx_.head += static_cast<size_t>(n); continue; }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && !final)
                break;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                pollfd p{client_, POLLOUT, 0};
                if (::poll(&p, 1, 100) <= 0) break;
                continue;
            }
            drop_client();
            return;
        }
        if (tx_.head == tx_.tail) tx_.clear();
        else if (tx_.room() < 4096) tx_.compact();
    }

    // The model is idle and has nothing to do: sleep until a client or a byte arrives. A server
    // whose parent process has gone (reparented) stops: nobody can stop it any more.
    void wait_for_input() {
        auto t = Clock::now();
        pollfd p{client_ >= 0 ? client_ : listen_fd_, POLLIN, 0};
        ::poll(&p, 1, 200);
        idle_s_ += seconds_since(t);
        if (::getppid() != parent_) g_stop = 1;
    }

    void stats() {
        const double wall = seconds_since(t0_);
        char line[160];
        const int n = std::snprintf(
            line, sizeof line, "STATS cycles=%llu busy_s=%.6f wall_s=%.6f rx=%llu tx=%llu\n",
            static_cast<unsigned long long>(cycles_), wall - idle_s_, wall,
            static_cast<unsigned long long>(rx_count_), static_cast<unsigned long long>(tx_count_));
        if (::write(STDOUT_FILENO, line, static_cast<size_t>(n)) < 0) { /* nobody reads: drop */ }
    }

    Vtop* top_;
    Options opt_;
    int listen_fd_ = -1;
    int client_ = -1;
    Buffer rx_, tx_;
    uint64_t cycles_ = 0, rx_count_ = 0, tx_count_ = 0;
    double idle_s_ = 0.0;
    Clock::time_point t0_;
    // given by --parent, so a parent that exits while this server starts is still noticed
    pid_t parent_;
};

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse(argc, argv);
    struct sigaction sa{};
    sa.sa_handler = on_stop;  // no SA_RESTART: a signal ends the poll() of an idle wait
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_stats;
    ::sigaction(SIGUSR1, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    auto ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    auto top = new Vtop{ctx};
    {
        Server server(top, opt);
        server.reset();
        server.run();
    }
    top->final();
    delete top;
    delete ctx;
    return 0;
}
