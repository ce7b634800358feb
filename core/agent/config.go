package agent

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk/units"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// KeyEnv names the environment variable that holds the worker's API key. It
// is never a flag: command lines are visible to every local user in ps.
const KeyEnv = "WISEHOSTING_WORKER_KEY"

// Defaults (the seed's job timeouts and the protocol's stats cadence).
const (
	DefaultBuildTimeout      = 10 * time.Minute
	DefaultStartTimeout      = 30 * time.Second
	DefaultStopTimeout       = 10 * time.Second
	DefaultStatsInterval     = 15 * time.Second
	DefaultHeartbeat         = 30 * time.Second
	DefaultMaxJobs           = 4
	DefaultRestartMin        = time.Second
	DefaultRestartMax        = 30 * time.Second
	DefaultCrashLoopRestarts = 5
	DefaultCrashLoopWindow   = 5 * time.Minute
	DefaultLogFlush          = 200 * time.Millisecond
	DefaultBuildLogInterval  = time.Second
	DefaultShutdownGrace     = 30 * time.Second
	DefaultPortMin           = 20000
	DefaultPortMax           = 29999
)

// Config is how an Agent runs. Zero fields take the defaults above.
type Config struct {
	// DataDir holds the apps' checkouts, logs and state (default
	// ./worker-data). It survives restarts: a restarted agent adopts the
	// apps its predecessor left running.
	DataDir string
	// Runtimes the worker offers: exec, podman (default exec).
	Runtimes []string
	// PortMin and PortMax bound the host ports given to apps.
	PortMin, PortMax int

	BuildTimeout  time.Duration // per build (clone + build command)
	StartTimeout  time.Duration // until the app's port accepts connections
	StopTimeout   time.Duration // SIGTERM → SIGKILL
	StatsInterval time.Duration // app_stats cadence
	// MaxConcurrentJobs bounds jobs of different apps run at once; jobs of
	// one app always run one at a time, in order.
	MaxConcurrentJobs int
	// RestartBackoffMin/Max bound the delay before restarting a crashed
	// app (doubling per recent restart).
	RestartBackoffMin, RestartBackoffMax time.Duration
	// More than CrashLoopRestarts restarts within CrashLoopWindow make an
	// app crashloop: it is reported and no longer restarted.
	CrashLoopRestarts int
	CrashLoopWindow   time.Duration
	LogFlushInterval  time.Duration // runtime_log batching
	BuildLogInterval  time.Duration // least time between build_log messages
	// SendTimeout bounds one message send; ResendInterval is how often
	// job results and app statuses that could not be sent are retried.
	SendTimeout    time.Duration
	ResendInterval time.Duration
	// ShutdownGrace is how long running jobs may finish after Run's
	// context ends before they are cancelled.
	ShutdownGrace time.Duration
	// StopAppsOnExit stops every app when the agent exits. By default
	// apps keep running (an agent restart or upgrade must not take them
	// down) and the next agent adopts them.
	StopAppsOnExit bool

	// GitPath and PodmanPath name the binaries (default "git", "podman",
	// looked up in PATH).
	GitPath, PodmanPath string
	// BaseEnv is the environment builds and exec apps get beneath the
	// app's own variables. Default: PATH, HOME, USER, LANG, LC_ALL, TZ and
	// TMPDIR from the agent's environment — never the agent's whole
	// environment, which holds the worker key.
	BaseEnv []string

	Logger hclog.Logger
}

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		c.DataDir = "worker-data"
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	c.DataDir = abs
	if len(c.Runtimes) == 0 {
		c.Runtimes = []string{wsproto.RuntimeExec}
	}
	for _, r := range c.Runtimes {
		if r != wsproto.RuntimeExec && r != wsproto.RuntimePodman {
			return fmt.Errorf("unknown runtime %q (exec, podman)", r)
		}
	}
	if c.PortMin == 0 && c.PortMax == 0 {
		c.PortMin, c.PortMax = DefaultPortMin, DefaultPortMax
	}
	if c.PortMin < 1 || c.PortMax > 65535 || c.PortMin > c.PortMax {
		return fmt.Errorf("invalid port range %d-%d", c.PortMin, c.PortMax)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.BuildTimeout, DefaultBuildTimeout)
	def(&c.StartTimeout, DefaultStartTimeout)
	def(&c.StopTimeout, DefaultStopTimeout)
	def(&c.StatsInterval, DefaultStatsInterval)
	def(&c.RestartBackoffMin, DefaultRestartMin)
	def(&c.RestartBackoffMax, DefaultRestartMax)
	def(&c.CrashLoopWindow, DefaultCrashLoopWindow)
	def(&c.LogFlushInterval, DefaultLogFlush)
	def(&c.BuildLogInterval, DefaultBuildLogInterval)
	def(&c.ShutdownGrace, DefaultShutdownGrace)
	def(&c.SendTimeout, 10*time.Second)
	def(&c.ResendInterval, 2*time.Second)
	if c.MaxConcurrentJobs <= 0 {
		c.MaxConcurrentJobs = DefaultMaxJobs
	}
	if c.CrashLoopRestarts <= 0 {
		c.CrashLoopRestarts = DefaultCrashLoopRestarts
	}
	if c.GitPath == "" {
		c.GitPath = "git"
	}
	if c.PodmanPath == "" {
		c.PodmanPath = "podman"
	}
	if c.BaseEnv == nil {
		c.BaseEnv = DefaultBaseEnv()
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return nil
}

// DefaultBaseEnv returns the variables of the agent's environment that builds
// and apps inherit.
func DefaultBaseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if _, ok := os.LookupEnv("PATH"); !ok {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	return env
}

// Options are the settings of `wisehosting worker run`.
type Options struct {
	Config
	CoreURL        string
	Name           string
	Address        string
	Zone           string
	CapacityCPU    int64 // millicores
	CapacityMemory int64 // bytes
	LogLevel       string
	// APIKey comes from $WISEHOSTING_WORKER_KEY, never from a flag.
	APIKey string
}

// Flags defines the command-line flags of `wisehosting worker run` on fs.
// Call Finish after fs.Parse.
func (o *Options) Flags(fs *flag.FlagSet) *FlagValues {
	v := &FlagValues{o: o}
	fs.StringVar(&o.CoreURL, "core", "", "URL of the core, e.g. https://core.example.com:8443 (required)")
	fs.StringVar(&o.Name, "name", "", "worker name; must match the name given to `wisehosting worker add`")
	fs.StringVar(&o.Address, "address", "", "private (e.g. WireGuard) address the edge proxy dials to reach this worker's apps")
	fs.StringVar(&o.Zone, "zone", "", "zone, for spread placement (default: the one the operator registered)")
	fs.StringVar(&o.DataDir, "data-dir", "./worker-data", "directory for checkouts, app logs and state")
	fs.StringVar(&v.runtimes, "runtime", "exec", "runtimes to offer, comma-separated: exec, podman")
	fs.StringVar(&v.ports, "port-range", fmt.Sprintf("%d-%d", DefaultPortMin, DefaultPortMax), "host ports given to apps, LOW-HIGH")
	fs.Int64Var(&o.CapacityCPU, "capacity-cpu", 0, "CPU offered to the scheduler, millicores (default: cores × 1000)")
	fs.StringVar(&v.memory, "capacity-memory", "", "memory offered to the scheduler, e.g. 8GiB (default: MemTotal)")
	fs.DurationVar(&o.BuildTimeout, "build-timeout", DefaultBuildTimeout, "longest a build (clone + build command) may take")
	fs.DurationVar(&o.StartTimeout, "start-timeout", DefaultStartTimeout, "longest an app may take to accept connections on its port")
	fs.IntVar(&o.MaxConcurrentJobs, "max-jobs", DefaultMaxJobs, "jobs of different apps run at once")
	fs.BoolVar(&o.StopAppsOnExit, "stop-apps-on-exit", false, "stop all apps when the agent exits (default: leave them running for the next agent to adopt)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	return v
}

// FlagValues holds the flags that need parsing after fs.Parse.
type FlagValues struct {
	o                       *Options
	runtimes, ports, memory string
}

// Finish checks and converts the parsed flags, reads the API key from the
// environment (getenv is os.Getenv in production) and fills in the
// capacity defaults from the host.
func (v *FlagValues) Finish(getenv func(string) string) error {
	o := v.o
	if o.CoreURL == "" {
		return errors.New("-core is required (the core's URL)")
	}
	o.Runtimes = nil
	for _, r := range strings.Split(v.runtimes, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if r != wsproto.RuntimeExec && r != wsproto.RuntimePodman {
			return fmt.Errorf("-runtime: unknown runtime %q (exec, podman)", r)
		}
		o.Runtimes = append(o.Runtimes, r)
	}
	if len(o.Runtimes) == 0 {
		return errors.New("-runtime: name at least one runtime (exec, podman)")
	}
	lo, hi, err := ParsePortRange(v.ports)
	if err != nil {
		return fmt.Errorf("-port-range: %w", err)
	}
	o.PortMin, o.PortMax = lo, hi
	if v.memory != "" {
		n, err := units.ParseSize(v.memory)
		if err != nil {
			return fmt.Errorf("-capacity-memory: %w", err)
		}
		o.CapacityMemory = n
	}
	if o.CapacityCPU < 0 {
		return errors.New("-capacity-cpu must not be negative")
	}
	if o.CapacityCPU == 0 {
		o.CapacityCPU = int64(runtime.NumCPU()) * 1000
	}
	if o.CapacityMemory == 0 {
		if m, err := readMeminfo(procRoot); err == nil {
			o.CapacityMemory = m.total
		}
	}
	if hclog.LevelFromString(o.LogLevel) == hclog.NoLevel {
		return fmt.Errorf("-log-level: unknown level %q", o.LogLevel)
	}
	o.APIKey = strings.TrimSpace(getenv(KeyEnv))
	if o.APIKey == "" {
		return fmt.Errorf("no worker API key: set $%s to the key `wisehosting worker add` printed (it is never a flag, so it never shows in ps)", KeyEnv)
	}
	return nil
}

// Registration returns the registration request these options describe.
func (o *Options) Registration(version string) wsproto.RegisterRequest {
	return wsproto.RegisterRequest{
		Name:     o.Name,
		Address:  o.Address,
		Zone:     o.Zone,
		Capacity: wsproto.Capacity{CPU: o.CapacityCPU, Memory: o.CapacityMemory},
		Runtimes: append([]string(nil), o.Runtimes...),
		Version:  version,
	}
}

// ParsePortRange parses "LOW-HIGH".
func ParsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not LOW-HIGH", s)
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a port range LOW-HIGH within 1-65535", s)
	}
	return lo, hi, nil
}
