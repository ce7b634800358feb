package agent

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what the agent reads from /proc/<pid>/stat.
type procStat struct {
	pid, ppid, pgrp int
	state           byte
	ticks           uint64 // utime + stime
	start           uint64 // starttime, jiffies after boot: tells a reused pid apart
}

var errBadStat = errors.New("malformed /proc/<pid>/stat")

func parseProcStat(b []byte) (procStat, error) {
	var s procStat
	// "pid (comm) state ppid pgrp …": comm may hold spaces and
	// parentheses, so split after the last ')'.
	s0 := string(b)
	open := strings.IndexByte(s0, '(')
	cl := strings.LastIndexByte(s0, ')')
	if open < 1 || cl < open {
		return s, errBadStat
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s0[:open]))
	if err != nil {
		return s, errBadStat
	}
	f := strings.Fields(s0[cl+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 {
		return s, errBadStat
	}
	s.pid = pid
	s.state = f[0][0]
	s.ppid, _ = strconv.Atoi(f[1])
	s.pgrp, _ = strconv.Atoi(f[2])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	s.ticks = ut + st
	s.start, _ = strconv.ParseUint(f[19], 10, 64)
	return s, nil
}

func readProcStat(proc string, pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// scanProcs reads the stat of every process.
func scanProcs(proc string) map[int]procStat {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readProcStat(proc, pid); err == nil {
			out[pid] = s
		}
	}
	return out
}

// groupMembers returns the live processes of an app: its process group and
// every descendant of its leader (a child that moved to a group of its own
// still counts).
func groupMembers(all map[int]procStat, pgid, leader int) []int {
	children := map[int][]int{}
	var out []int
	seen := map[int]bool{}
	for pid, s := range all {
		children[s.ppid] = append(children[s.ppid], pid)
		if s.pgrp == pgid && s.state != 'Z' {
			out = append(out, pid)
			seen[pid] = true
		}
	}
	stack := []int{leader}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range children[p] {
			if !seen[c] && all[c].state != 'Z' {
				seen[c] = true
				out = append(out, c)
				stack = append(stack, c)
			}
		}
	}
	return out
}

// procStatus holds the fields of /proc/<pid>/status the agent uses.
type procStatus struct {
	rss     int64 // bytes
	threads int64
}

func readProcStatus(proc string, pid int) (procStatus, error) {
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return procStatus{}, err
	}
	defer f.Close()
	var st procStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			st.rss = parseKB(v)
		case "Threads":
			st.threads, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return st, sc.Err()
}

// readProcIO returns read_bytes + write_bytes of /proc/<pid>/io (storage
// I/O); 0 when it cannot be read.
func readProcIO(proc string, pid int) uint64 {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "io"))
	if err != nil {
		return 0
	}
	var n uint64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "read_bytes" || k == "write_bytes") {
			x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			n += x
		}
	}
	return n
}

// parseNetDev sums the receive and transmit byte counters of every
// interface but loopback in a /proc/net/dev file.
func parseNetDev(b []byte) (rx, tx int64) {
	for i, line := range strings.Split(string(b), "\n") {
		if i < 2 {
			continue // headers
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseInt(f[0], 10, 64)
		t, _ := strconv.ParseInt(f[8], 10, 64)
		rx += r
		tx += t
	}
	return rx, tx
}

// ownNetNS reports whether pid has a network namespace of its own (not the
// agent's), and if so its byte counters. An app sharing the host's
// namespace has no per-app counters: 0, 0, false.
func ownNetNS(proc string, pid int) (rx, tx int64, ok bool) {
	mine, err1 := os.Readlink(filepath.Join(proc, "self", "ns", "net"))
	its, err2 := os.Readlink(filepath.Join(proc, strconv.Itoa(pid), "ns", "net"))
	if err1 != nil || err2 != nil || mine == its {
		return 0, 0, false
	}
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "net", "dev"))
	if err != nil {
		return 0, 0, false
	}
	rx, tx = parseNetDev(b)
	return rx, tx, true
}
