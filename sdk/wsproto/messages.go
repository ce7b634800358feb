package wsproto

// Message types, worker → core.
const (
	TypeHeartbeat  = "heartbeat"
	TypeJobStatus  = "job_status"
	TypeJobResult  = "job_result"
	TypeAppStats   = "app_stats"
	TypeAppStatus  = "app_status"
	TypeViolation  = "violation"
	TypeRuntimeLog = "runtime_log"
	TypeBuildLog   = "build_log"
)

// Message types, core → worker.
const (
	TypeJob   = "job"
	TypeError = "error"
)

// Error codes carried by an Error message.
const (
	CodeBadFrame    = "bad_frame"    // not a well-formed envelope
	CodeBadMAC      = "bad_mac"      // the MAC does not verify
	CodeBadClock    = "bad_clock"    // ts beyond MaxClockSkew
	CodeReplayed    = "replayed"     // seq seen before or too old
	CodeUnknownType = "unknown_type" // no such message type
	CodeBadPayload  = "bad_payload"  // the payload does not fit its type
	CodeNotOwner    = "not_owner"    // the app or job is not this worker's
	CodeRateLimited = "rate_limited" // log bytes beyond the bucket
	CodeTooLarge    = "too_large"    // frame beyond MaxFrameSize
	CodeInternal    = "internal"     // the core failed; retry later
)

// Log limits (the core enforces them per connection).
const (
	// LogRate is the sustained runtime+build log rate, bytes per second.
	LogRate = 256 << 10
	// LogBurst is the log token bucket's size in bytes.
	LogBurst = 1 << 20
	// MaxLogLine is the longest log line kept; longer lines are cut.
	MaxLogLine = 8 << 10
	// MaxLogLinesPerMessage bounds a runtime_log message.
	MaxLogLinesPerMessage = 5000
	// MaxBuildLog is the most build log kept per deployment (head and tail
	// around a TruncationMarker).
	MaxBuildLog = 512 << 10
)

// TruncationMarker joins the head and tail of a capped build log.
const TruncationMarker = "\n...[truncated]...\n"

// Heartbeat reports the worker's live resources.
type Heartbeat struct {
	CPUPercent    float64 `json:"cpu_percent"`
	MemoryPercent float64 `json:"memory_percent"`
	DiskPercent   float64 `json:"disk_percent"`
	MemoryTotal   int64   `json:"memory_total,omitempty"` // bytes
	MemoryUsed    int64   `json:"memory_used,omitempty"`
	DiskTotal     int64   `json:"disk_total,omitempty"`
	DiskUsed      int64   `json:"disk_used,omitempty"`
	Load1         float64 `json:"load1,omitempty"`
	RunningApps   int64   `json:"running_apps"`
}

// JobStatus reports progress on a job the worker holds.
type JobStatus struct {
	JobID int64 `json:"job_id"`
	// Status is "processing" (started) or "assigned" (queued on the worker).
	Status   string `json:"status"`
	Message  string `json:"message,omitempty"`
	Progress int64  `json:"progress,omitempty"` // 0–100
}

// JobResult finishes a job.
type JobResult struct {
	JobID   int64  `json:"job_id"`
	Success bool   `json:"success"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
	// Port the app listens on (deploy/restart/start), within the worker's
	// port range.
	Port          int64  `json:"port,omitempty"`
	ContainerID   string `json:"container_id,omitempty"`
	CommitSHA     string `json:"commit_sha,omitempty"`
	CommitMessage string `json:"commit_message,omitempty"`
}

// AppStats carries live statistics of several apps.
type AppStats struct {
	Apps []AppStat `json:"apps"`
}

// AppStat is one app's live statistics.
type AppStat struct {
	AppID      int64   `json:"app_id"`
	CPUPercent float64 `json:"cpu_percent"`
	MemBytes   int64   `json:"mem_bytes"`
	MemLimit   int64   `json:"mem_limit,omitempty"`
	// NetRxBytes and NetTxBytes are running totals since the app started;
	// the core derives deltas (and notices counter resets).
	NetRxBytes int64   `json:"net_rx_bytes"`
	NetTxBytes int64   `json:"net_tx_bytes"`
	NetMbps    float64 `json:"net_mbps"`
	DiskMbps   float64 `json:"disk_mbps"`
}

// App statuses reported by app_status.
const (
	AppRunning   = "running"
	AppStopped   = "stopped"
	AppExited    = "exited"
	AppCrashloop = "crashloop"
)

// AppStatus reports a change of an app's process state.
type AppStatus struct {
	AppID        int64  `json:"app_id"`
	Status       string `json:"status"`
	RestartCount int64  `json:"restart_count,omitempty"`
	ExitCode     int    `json:"exit_code,omitempty"`
	Message      string `json:"message,omitempty"`
}

// Violation reports an app breaking one of its limits.
type Violation struct {
	AppID int64 `json:"app_id"`
	// Kind is "memory", "cpu", "disk", "pids" or "bandwidth".
	Kind    string `json:"kind"`
	Message string `json:"message,omitempty"`
}

// RuntimeLog carries app output lines.
type RuntimeLog struct {
	Lines []LogLine `json:"lines"`
}

// LogLine is one line an app wrote.
type LogLine struct {
	AppID int64 `json:"app_id"`
	// TS is when the line was written, Unix nanoseconds.
	TS int64 `json:"ts"`
	// Stream is "stdout", "stderr" or "system" (the worker's own notes).
	Stream string `json:"stream"`
	Line   string `json:"line"`
}

// BuildLog carries a deployment's build output so far (the core keeps the
// latest, capped to MaxBuildLog).
type BuildLog struct {
	DeploymentID int64  `json:"deployment_id"`
	JobID        int64  `json:"job_id"`
	Logs         string `json:"logs"`
}

// Job hands the worker a job.
type Job struct {
	JobID        int64  `json:"job_id"`
	Type         string `json:"type"` // deploy, restart, start, stop, delete
	AppID        int64  `json:"app_id"`
	DeploymentID int64  `json:"deployment_id,omitempty"`
	// Payload is the deploy spec (deploy/restart/start); empty for stop and
	// delete.
	Payload *DeployPayload `json:"payload,omitempty"`
}

// DeployPayload is what a worker needs to build and run an app.
type DeployPayload struct {
	AppID     int64  `json:"app_id"`
	AppUUID   string `json:"app_uuid"`
	AppName   string `json:"app_name"`
	Subdomain string `json:"subdomain"`
	// Runtime is "exec" or "podman".
	Runtime string `json:"runtime"`
	// GitRepo is a git URL, or a local path (file:// or absolute) for
	// single-machine setups and tests.
	GitRepo   string `json:"git_repo"`
	GitBranch string `json:"git_branch,omitempty"`
	// CommitSHA pins the commit to build; empty means the branch's head.
	CommitSHA string `json:"commit_sha,omitempty"`
	// GitToken authenticates a private repository (the payload is
	// encrypted at rest and only ever sent over the signed connection).
	GitToken     string            `json:"git_token,omitempty"`
	BuildCommand string            `json:"build_command,omitempty"`
	RunCommand   string            `json:"run_command,omitempty"`
	Dockerfile   string            `json:"dockerfile,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Limits       Limits            `json:"limits"`
}

// Limits are the app's plan limits.
type Limits struct {
	CPU       int64 `json:"cpu"`                 // millicores
	Memory    int64 `json:"memory"`              // bytes
	Disk      int64 `json:"disk,omitempty"`      // bytes
	PIDs      int64 `json:"pids,omitempty"`      // processes
	Bandwidth int64 `json:"bandwidth,omitempty"` // bits per second, 0 = unlimited
}

// Error tells the peer a message was refused; ReplyTo of its envelope names
// the message.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
