package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// statsState is a release's previous sample, for rates.
type statsState struct {
	at     time.Time
	ticks  map[int]uint64 // exec: utime+stime per pid
	io     map[int]uint64 // exec: storage bytes per pid
	rx, tx int64
	blk    int64 // podman: block I/O total
}

// prime takes a first sample so the first report has rates.
func (s *statsState) prime(a *Agent, rel *release) {
	if x, ok := rel.inst.(*execInstance); ok {
		_ = a.sampleExec(rel, x, scanProcs(procRoot))
	}
}

// sample is one app's reading.
type sample struct {
	stat wsproto.AppStat
	pids int64 // tasks (threads), as a pids cgroup counts them
}

// sampleExec reads an exec release's process group from /proc: CPU from
// utime+stime deltas, memory as the sum of VmRSS, tasks as the sum of
// Threads, storage I/O from /proc/<pid>/io, network from the leader's
// /proc/<pid>/net/dev when it has a namespace of its own (else 0).
func (a *Agent) sampleExec(rel *release, x *execInstance, procs map[int]procStat) sample {
	st := &rel.stats
	now := time.Now()
	leader := x.pgid()
	members := groupMembers(procs, leader, leader)
	ticks := make(map[int]uint64, len(members))
	io := make(map[int]uint64, len(members))
	var dTicks, dIO uint64
	var s sample
	s.stat.AppID = rel.spec.AppID
	for _, pid := range members {
		ps := procs[pid]
		ticks[pid] = ps.ticks
		if prev, ok := st.ticks[pid]; ok && ps.ticks >= prev {
			dTicks += ps.ticks - prev
		} else if !ok && st.ticks != nil {
			dTicks += ps.ticks // started since the last sample
		}
		b := readProcIO(procRoot, pid)
		io[pid] = b
		if prev, ok := st.io[pid]; ok && b >= prev {
			dIO += b - prev
		}
		if status, err := readProcStatus(procRoot, pid); err == nil {
			s.stat.MemBytes += status.rss
			s.pids += status.threads
		}
	}
	rx, tx, _ := ownNetNS(procRoot, leader)
	s.stat.NetRxBytes, s.stat.NetTxBytes = rx, tx
	if !st.at.IsZero() {
		el := now.Sub(st.at).Seconds()
		if el > 0 {
			s.stat.CPUPercent = round2(100 * float64(dTicks) / clockTicks / el)
			if d := (rx - st.rx) + (tx - st.tx); d > 0 {
				s.stat.NetMbps = round2(float64(d) * 8 / 1e6 / el)
			}
			s.stat.DiskMbps = round2(float64(dIO) * 8 / 1e6 / el)
		}
	}
	st.at, st.ticks, st.io, st.rx, st.tx = now, ticks, io, rx, tx
	return s
}

func (a *Agent) samplePodman(rel *release, cs containerStats) sample {
	st := &rel.stats
	now := time.Now()
	s := sample{pids: cs.pids}
	s.stat = wsproto.AppStat{AppID: rel.spec.AppID, CPUPercent: round2(cs.cpu), MemBytes: cs.mem, NetRxBytes: cs.rx, NetTxBytes: cs.tx}
	blk := cs.blockR + cs.blkW
	if !st.at.IsZero() {
		if el := now.Sub(st.at).Seconds(); el > 0 {
			if d := (cs.rx - st.rx) + (cs.tx - st.tx); d > 0 {
				s.stat.NetMbps = round2(float64(d) * 8 / 1e6 / el)
			}
			if d := blk - st.blk; d > 0 {
				s.stat.DiskMbps = round2(float64(d) * 8 / 1e6 / el)
			}
		}
	}
	st.at, st.rx, st.tx, st.blk = now, cs.rx, cs.tx, blk
	return s
}

// statsLoop sends one app_stats message for all running apps every
// StatsInterval, and checks their limits.
func (a *Agent) statsLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.collectStats(ctx)
	}
}

func (a *Agent) collectStats(ctx context.Context) {
	var execRels, podRels []*release
	for _, rel := range a.releases() {
		select {
		case <-rel.inst.done():
			continue // not running
		default:
		}
		if rel.isStopping() {
			continue
		}
		switch rel.inst.(type) {
		case *execInstance:
			execRels = append(execRels, rel)
		case *podmanInstance:
			podRels = append(podRels, rel)
		}
	}
	var out []wsproto.AppStat
	if len(execRels) > 0 {
		procs := scanProcs(procRoot)
		for _, rel := range execRels {
			s := a.sampleExec(rel, rel.inst.(*execInstance), procs)
			s.stat.MemLimit = rel.spec.Limits.Memory
			out = append(out, s.stat)
			a.checkLimits(rel, s)
		}
	}
	if len(podRels) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		all, err := a.podman.stats(pctx)
		cancel()
		if err != nil {
			a.log.Warn("podman stats failed", "error", err)
		}
		for _, rel := range podRels {
			cs, ok := all[rel.inst.(*podmanInstance).getName()]
			if !ok {
				continue
			}
			s := a.samplePodman(rel, cs)
			s.stat.MemLimit = rel.spec.Limits.Memory
			out = append(out, s.stat)
			a.checkLimits(rel, s)
		}
	}
	if len(out) == 0 {
		return
	}
	_ = a.send(wsproto.TypeAppStats, func(ctx context.Context) error {
		return a.client.SendAppStats(ctx, wsproto.AppStats{Apps: out})
	})
}

// checkLimits reports an app going over its memory or PIDs limit (once per
// episode). Exec apps are watched only, so one using more than 110 % of its
// memory is killed (and restarted by its supervisor); podman's cgroups
// enforce limits themselves.
func (a *Agent) checkLimits(rel *release, s sample) {
	l := rel.spec.Limits
	id := rel.spec.AppID
	report := func(kind, msg string) {
		a.log.Warn("app over its limit", "app", id, "kind", kind)
		a.logs.add(id, "system", "[worker] "+msg)
		v := wsproto.Violation{AppID: id, Kind: kind, Message: msg}
		_ = a.send(wsproto.TypeViolation, func(ctx context.Context) error { return a.client.SendViolation(ctx, v) })
	}
	mem := s.stat.MemBytes
	switch {
	case l.Memory > 0 && mem > l.Memory+l.Memory/10 && rel.drv.name() == wsproto.RuntimeExec:
		report("memory", fmt.Sprintf("memory %s is above 110%% of the limit %s: killed", humanBytes(mem), humanBytes(l.Memory)))
		rel.violating["memory"] = true
		rel.inst.kill()
	case l.Memory > 0 && mem > l.Memory:
		if !rel.violating["memory"] {
			rel.violating["memory"] = true
			report("memory", fmt.Sprintf("memory %s is above the limit %s", humanBytes(mem), humanBytes(l.Memory)))
		}
	default:
		delete(rel.violating, "memory")
	}
	if l.PIDs > 0 && s.pids > l.PIDs {
		if !rel.violating["pids"] {
			rel.violating["pids"] = true
			report("pids", fmt.Sprintf("%d tasks, above the limit of %d", s.pids, l.PIDs))
		}
	} else {
		delete(rel.violating, "pids")
	}
}

// humanBytes formats a byte count for people: "12.3MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTP"[exp])
}
