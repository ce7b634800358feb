package agent

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// procRoot is where procfs is mounted.
const procRoot = "/proc"

// hostSampler reads the host's resources for heartbeats. CPU usage is the
// busy share of the jiffies /proc/stat counted since the previous sample.
type hostSampler struct {
	proc    string
	dataDir string

	mu             sync.Mutex
	lastTotal      uint64
	lastIdle       uint64
	lastCPUPercent float64
}

func newHostSampler(proc, dataDir string) *hostSampler {
	h := &hostSampler{proc: proc, dataDir: dataDir}
	if t, i, err := readCPUTimes(proc); err == nil {
		h.lastTotal, h.lastIdle = t, i
	}
	return h
}

// sample fills everything a heartbeat carries except RunningApps.
func (h *hostSampler) sample() wsproto.Heartbeat {
	var hb wsproto.Heartbeat
	h.mu.Lock()
	if total, idle, err := readCPUTimes(h.proc); err == nil {
		dt, di := total-h.lastTotal, idle-h.lastIdle
		if total > h.lastTotal && idle >= h.lastIdle && di <= dt {
			h.lastCPUPercent = round2(100 * float64(dt-di) / float64(dt))
		}
		h.lastTotal, h.lastIdle = total, idle
	}
	hb.CPUPercent = h.lastCPUPercent
	h.mu.Unlock()

	if m, err := readMeminfo(h.proc); err == nil && m.total > 0 {
		hb.MemoryTotal = m.total
		hb.MemoryUsed = m.total - m.available
		hb.MemoryPercent = round2(100 * float64(hb.MemoryUsed) / float64(m.total))
	}
	if total, used, avail, err := diskUsage(h.dataDir); err == nil && total > 0 {
		hb.DiskTotal, hb.DiskUsed = total, used
		if used+avail > 0 {
			// Like df: the share of what non-root users can use.
			hb.DiskPercent = round2(100 * float64(used) / float64(used+avail))
		}
	}
	if l, err := readLoad1(h.proc); err == nil {
		hb.Load1 = l
	}
	return hb
}

// readCPUTimes returns the total and idle (idle + iowait) jiffies of the
// aggregate "cpu" line of /proc/stat.
func readCPUTimes(proc string) (total, idle uint64, err error) {
	b, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("unexpected /proc/stat")
	}
	// user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already counted in user and nice.
	for i, s := range f[1:] {
		if i >= 8 {
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return total, idle, nil
}

type meminfo struct{ total, available int64 }

func readMeminfo(proc string) (meminfo, error) {
	f, err := os.Open(filepath.Join(proc, "meminfo"))
	if err != nil {
		return meminfo{}, err
	}
	defer f.Close()
	var m meminfo
	var free, buffers, cached int64
	haveAvail := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n := parseKB(v)
		switch k {
		case "MemTotal":
			m.total = n
		case "MemAvailable":
			m.available, haveAvail = n, true
		case "MemFree":
			free = n
		case "Buffers":
			buffers = n
		case "Cached":
			cached = n
		}
	}
	if m.total == 0 {
		return m, errors.New("no MemTotal in meminfo")
	}
	if !haveAvail { // kernels before 3.14
		m.available = free + buffers + cached
	}
	return m, sc.Err()
}

// parseKB reads "  1234 kB" as bytes.
func parseKB(s string) int64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	if len(f) > 1 && f[1] == "kB" {
		n *= 1024
	}
	return n
}

func readLoad1(proc string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(proc, "loadavg"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("empty loadavg")
	}
	return strconv.ParseFloat(f[0], 64)
}

// diskUsage is statfs of the file system holding dir: total bytes, used
// bytes and bytes available to unprivileged users.
func diskUsage(dir string) (total, used, avail int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, 0, err
	}
	bs := int64(st.Bsize)
	total = int64(st.Blocks) * bs
	used = (int64(st.Blocks) - int64(st.Bfree)) * bs
	avail = int64(st.Bavail) * bs
	return total, used, avail, nil
}

func round2(f float64) float64 {
	return float64(int64(f*100+0.5)) / 100
}
