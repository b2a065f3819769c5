// Pins of the eurorack-pmod SoC (Verilated) driven like the board drives them.
//
//   UART   serial_tx / serial_rx at the bit level, bridged to one TCP client
//          (the host tools open socket://localhost:PORT); the client may come
//          and go: what it sent still goes out on the wire after it left (as a
//          USB serial adapter does), answers nobody waits for are dropped.
//   codec  AK4619 TDM128 model, clock slave: frame boundary at each LRCK fall
//          seen at a BICK fall (reset release counts as the first one), SDOUT
//          changes on BICK falling, SDIN sampled on BICK rising.  ADC slots
//          play the input frames, DAC slots are recorded.
//   I2C    open-drain bus with register-file targets: AK4619 0x10, PCA9635
//          0x05 (5-bit pointer), PCA9557 0x18 (input byte = jack bits), EEPROM
//          0x52 (serial number at 0xFA).  Every write and read is logged.
//
// Arguments are key=value: in= out= frames= (-1: until SIGINT/SIGTERM) loop=0|1
// port= (-1: no UART) jack= i2c_log= uart_log= sys_half= audio_half= (ps)
// bit_cycles= (sys cycles per UART bit) serial=hex12.
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <vector>
#include "verilated.h"
#include "Vnnhdl_pmod_soc.h"

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int) { g_stop = 1; }

static double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---------------------------------------------------------------- UART <-> TCP
struct UartBridge {
    int listen_fd = -1, client = -1;
    double bit_cycles = 1;
    std::deque<uint8_t> to_fpga, to_host;
    FILE *log = nullptr;  // host -> FPGA bytes, one connection per line
    // FPGA rx line (host -> FPGA)
    bool tx_busy = false; uint64_t tx_t0 = 0; uint16_t tx_frame = 0;
    // FPGA tx line (FPGA -> host)
    bool rx_busy = false; uint64_t rx_t0 = 0; int rx_bit = 0; uint8_t rx_byte = 0;

    int open(int port) {
        listen_fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(listen_fd, (sockaddr *)&a, sizeof a) != 0 || listen(listen_fd, 1) != 0) return -1;
        fcntl(listen_fd, F_SETFL, O_NONBLOCK);
        socklen_t n = sizeof a;
        getsockname(listen_fd, (sockaddr *)&a, &n);
        return ntohs(a.sin_port);
    }
    void drop_client() {  // bytes already received still go out (a serial adapter sends what it was given)
        close(client); client = -1; to_host.clear();
        if (log) { fputs("\n", log); fflush(log); }
    }
    void poll() {
        if (listen_fd < 0) return;
        if (client < 0) {
            client = accept(listen_fd, nullptr, nullptr);
            if (client < 0) return;
            fcntl(client, F_SETFL, O_NONBLOCK);
            int one = 1;
            setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        uint8_t buf[4096];
        if (to_fpga.size() < 64) {
            ssize_t n = recv(client, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) { drop_client(); return; }
            for (ssize_t i = 0; i < n; i++) {
                to_fpga.push_back(buf[i]);
                if (log) fprintf(log, "%02x", buf[i]);
            }
        }
        while (!to_host.empty()) {
            size_t k = 0;
            while (k < sizeof buf && k < to_host.size()) { buf[k] = to_host[k]; k++; }
            ssize_t n = send(client, buf, k, MSG_NOSIGNAL);
            if (n <= 0) { if (errno != EAGAIN && errno != EWOULDBLOCK) drop_client(); return; }
            to_host.erase(to_host.begin(), to_host.begin() + n);
        }
    }
    // once per system clock cycle: returns the level for serial_rx
    int step(uint64_t cyc, int serial_tx) {
        if (!rx_busy && !serial_tx) { rx_busy = true; rx_t0 = cyc; rx_bit = 0; rx_byte = 0; }
        else if (rx_busy) {
            double t = (double)(cyc - rx_t0);
            if (rx_bit < 8 && t >= (1.5 + rx_bit) * bit_cycles) { rx_byte |= serial_tx << rx_bit; rx_bit++; }
            else if (rx_bit == 8 && t >= 9.5 * bit_cycles) {
                rx_busy = false;
                if (serial_tx && client >= 0) to_host.push_back(rx_byte);
            }
        }
        if (!tx_busy && !to_fpga.empty()) {
            tx_frame = (uint16_t)((1u << 9) | (to_fpga.front() << 1)); to_fpga.pop_front();
            tx_busy = true; tx_t0 = cyc;
        }
        if (!tx_busy) return 1;
        int bit = (int)((double)(cyc - tx_t0) / bit_cycles);
        if (bit >= 10) { tx_busy = false; return 1; }
        return (tx_frame >> bit) & 1;
    }
};

// ---------------------------------------------------------------- I2C targets
struct Target {
    std::vector<uint8_t> regs;
    int mask, ptr = 0;
    bool first = true;
    Target(int size = 256, int pointer_bits = 8) : regs(size, 0), mask((1 << pointer_bits) - 1) {}
};

struct I2CBus {
    std::map<int, Target> targets;
    FILE *log = nullptr;
    int scl = 1, sda = 1, drive = 1, nbits = 0, byte = 0, addr = -1, out = 0;
    bool reading = false, master_nack = false;
    enum { IDLE, ADDR, ACK, WRITE, READ, MASTER_ACK, DONE } st = IDLE;
    Target *t = nullptr;

    void start() { st = ADDR; byte = nbits = 0; t = nullptr; addr = -1; drive = 1; }
    void stop() { st = IDLE; t = nullptr; drive = 1; }
    int next_read() {
        int v = t->regs[t->ptr];
        if (log) fprintf(log, "read 0x%02x 0x%02x 0x%02x\n", addr, t->ptr, v);
        t->ptr = (t->ptr + 1) % (int)t->regs.size();
        return v;
    }
    void rise(int s) {
        if (st == ADDR || st == WRITE) { byte = (byte << 1) | s; nbits++; }
        else if (st == MASTER_ACK) master_nack = s;
        else if (st == READ) nbits++;
    }
    void fall() {
        if ((st == ADDR || st == WRITE) && nbits == 8) {
            if (st == ADDR) {
                addr = byte >> 1; reading = byte & 1;
                auto it = targets.find(addr);
                t = it == targets.end() ? nullptr : &it->second;
                if (t) t->first = !reading;
                else if (log) fprintf(log, "nack 0x%02x\n", addr);
            } else if (t->first) {
                t->ptr = byte & t->mask; t->first = false;
            } else {
                if (log) fprintf(log, "write 0x%02x 0x%02x 0x%02x\n", addr, t->ptr, byte);
                t->regs[t->ptr] = (uint8_t)byte;
                t->ptr = (t->ptr + 1) % (int)t->regs.size();
            }
            drive = t ? 0 : 1;
            st = ACK;
        } else if (st == ACK) {
            drive = 1;
            if (!t) st = IDLE;
            else if (reading) { out = next_read(); st = READ; nbits = 0; drive = (out >> 7) & 1; }
            else { st = WRITE; byte = nbits = 0; }
        } else if (st == READ) {
            if (nbits == 8) { drive = 1; st = MASTER_ACK; }
            else drive = (out >> (7 - nbits)) & 1;
        } else if (st == MASTER_ACK) {
            if (master_nack) st = DONE;
            else { out = next_read(); st = READ; nbits = 0; drive = (out >> 7) & 1; }
        }
    }
    // once per system clock cycle with the FPGA's pull-down enables; returns the SDA level
    int step(int scl_oe, int sda_oe) {
        int nscl = scl_oe ? 0 : 1;
        int nsda = (sda_oe || !drive) ? 0 : 1;
        if (nscl && scl && nsda != sda) { if (!nsda) start(); else stop(); }
        else if (nscl && !scl) rise(nsda);
        else if (!nscl && scl) fall();
        scl = nscl; sda = nsda;
        return (sda_oe || !drive) ? 0 : 1;
    }
};

// ---------------------------------------------------------------- AK4619 TDM
struct Codec {
    std::vector<int16_t> adc;  // frames x 4, raw codec ADC values
    long nframes = 0;
    bool loop = false;
    FILE *out = nullptr;
    long frame = 0, recorded = 0;
    int bit = 0, prev_bick = 0, prev_lrck = 0, sdout = 0;
    int rx[128] = {0};

    int adc_bit(int b) {
        int pos = (b + 127) % 128, slot = pos / 32, k = pos % 32;
        if (b == 0 || k >= 16 || nframes == 0) return 0;
        long f = frame;
        if (f >= nframes) { if (!loop) return 0; f %= nframes; }
        return ((uint16_t)adc[f * 4 + slot] >> (15 - k)) & 1;
    }
    void finish_frame() {
        int16_t w[4];
        for (int s = 0; s < 4; s++) {
            int v = 0;
            for (int k = 0; k < 16; k++) v = (v << 1) | rx[1 + 32 * s + k];
            w[s] = (int16_t)v;
        }
        if (out) fwrite(w, 2, 4, out);
        recorded++;
        memset(rx, 0, sizeof rx);
    }
    // once per MCLK cycle; returns SDOUT
    int step(int bick, int lrck, int sdin) {
        if (prev_bick && !bick) {
            if (prev_lrck && !lrck) { finish_frame(); frame++; bit = 0; }
            else bit++;
            sdout = bit < 128 ? adc_bit(bit) : 0;
            prev_lrck = lrck;
        } else if (!prev_bick && bick && bit < 128) {
            rx[bit] = sdin;
        }
        prev_bick = bick;
        return sdout;
    }
};

// ---------------------------------------------------------------- main
int main(int argc, char **argv) {
    std::map<std::string, std::string> a;
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq) a[std::string(argv[i], eq - argv[i])] = eq + 1;
    }
    auto get = [&](const char *k, const char *d) { return a.count(k) ? a[k] : std::string(d); };
    Codec codec;
    std::string in = get("in", "");
    if (!in.empty()) {
        FILE *f = fopen(in.c_str(), "rb");
        if (!f) { fprintf(stderr, "error: cannot read %s\n", in.c_str()); return 2; }
        int16_t v;
        while (fread(&v, 2, 1, f) == 1) codec.adc.push_back(v);
        fclose(f);
        codec.nframes = codec.adc.size() / 4;
    }
    codec.loop = get("loop", "0") == "1";
    std::string outp = get("out", "");
    if (!outp.empty() && !(codec.out = fopen(outp.c_str(), "wb"))) {
        fprintf(stderr, "error: cannot write %s\n", outp.c_str()); return 2;
    }
    long frames = atol(get("frames", "-1").c_str());
    I2CBus i2c;
    std::string i2c_log = get("i2c_log", "");
    if (!i2c_log.empty()) i2c.log = fopen(i2c_log.c_str(), "w");
    i2c.targets.emplace(0x10, Target());
    i2c.targets.emplace(0x05, Target(32, 5));
    Target jack;
    jack.regs[0] = (uint8_t)strtol(get("jack", "255").c_str(), nullptr, 0);
    i2c.targets.emplace(0x18, jack);
    Target eeprom;
    std::string serial = get("serial", "000000000000");
    for (int i = 0; i < 6 && 2 * i + 1 < (int)serial.size(); i++)
        eeprom.regs[0xFA + i] = (uint8_t)strtol(serial.substr(2 * i, 2).c_str(), nullptr, 16);
    i2c.targets.emplace(0x52, eeprom);

    UartBridge uart;
    uart.bit_cycles = atof(get("bit_cycles", "106.666667").c_str());
    std::string uart_log = get("uart_log", "");
    if (!uart_log.empty()) uart.log = fopen(uart_log.c_str(), "w");
    int port = atoi(get("port", "-1").c_str());
    if (port >= 0) {
        int got = uart.open(port);
        if (got < 0) { fprintf(stderr, "error: cannot listen on TCP port %d: %s\n", port, strerror(errno)); return 3; }
        fprintf(stderr, "listening %d\n", got);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    const long S = atol(get("sys_half", "1").c_str());
#ifndef SINGLE_CLOCK
    const long A = atol(get("audio_half", "1").c_str());
#endif
    Verilated::commandArgs(argc, argv);
    Vnnhdl_pmod_soc *top = new Vnnhdl_pmod_soc;
    top->sim_rst = 1; top->serial_rx = 1; top->eurorack_pmod_sdout1 = 0; top->eurorack_pmod_i2c_sda_i = 1;
    top->sys_clk = 0;
#ifndef SINGLE_CLOCK
    top->audio_clk = 0;
    long na = A;
#endif
    long ns = S;
    uint64_t sys_cycles = 0;
    const pid_t parent = getppid();  // stop when the parent dies (no orphan holding the TCP port)
    double t_start = now_s(), t_report = t_start;
    fprintf(stderr, "running\n");
    // Inputs computed from the outputs after a rising edge are applied before the next edge's
    // eval, so each clock edge costs one eval.
    while (!g_stop && (frames < 0 || codec.recorded < frames)) {
        bool srise = false, arise = false;
#ifndef SINGLE_CLOCK
        long t = na < ns ? na : ns;
        if (na == t) { top->audio_clk = !top->audio_clk; arise = top->audio_clk; na += A; }
#else
        long t = ns;
#endif
        if (ns == t) { top->sys_clk = !top->sys_clk; srise = top->sys_clk; ns += S; }
        top->eval();
#ifdef SINGLE_CLOCK
        arise = srise;
#endif
        if (srise) {
            sys_cycles++;
            if (sys_cycles == 16) top->sim_rst = 0;
            top->serial_rx = uart.step(sys_cycles, top->serial_tx);
            top->eurorack_pmod_i2c_sda_i = i2c.step(top->eurorack_pmod_i2c_scl_oe, top->eurorack_pmod_i2c_sda_oe);
            if ((sys_cycles & 255) == 0) uart.poll();
            if ((sys_cycles & 0xFFFF) == 0) {
                if (getppid() != parent) g_stop = 1;
                double tn = now_s();
                if (tn - t_report > 1.0) {
                    t_report = tn;
                    fprintf(stderr, "progress %ld %llu %.3f\n", codec.recorded, (unsigned long long)sys_cycles,
                            tn - t_start);
                    if (codec.out) fflush(codec.out);
                    if (i2c.log) fflush(i2c.log);
                }
            }
        }
        if (arise) top->eurorack_pmod_sdout1 = codec.step(top->eurorack_pmod_bick, top->eurorack_pmod_lrck,
                                                           top->eurorack_pmod_sdin1);
    }
    double wall = now_s() - t_start;
    if (codec.out) fclose(codec.out);
    if (i2c.log) fclose(i2c.log);
    if (uart.log) fclose(uart.log);
    fprintf(stderr, "done %ld %llu %.3f\n", codec.recorded, (unsigned long long)sys_cycles, wall);
    delete top;
    return 0;
}
