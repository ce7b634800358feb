package cliclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// ID identifies a deployment, job or domain. The API may send it as a JSON
// number or string; either decodes, and it is sent back as the path
// segment it was.
type ID string

// UnmarshalJSON accepts a number or a string.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("id: %w", err)
		}
		*id = ID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id: want a number or a string, got %s", b)
	}
	*id = ID(n.String())
	return nil
}

// Timestamp is a time the API sends either as an RFC 3339 string or as a
// Unix time number (seconds, milliseconds, microseconds or nanoseconds,
// told apart by magnitude, as log lines carry it).
type Timestamp struct{ time.Time }

// UnmarshalJSON accepts an RFC 3339 string, a Unix time number or null.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		t.Time = time.Time{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		return t.Time.UnmarshalJSON(b)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil {
			return fmt.Errorf("timestamp: want RFC 3339 or a Unix time, got %s", b)
		}
		t.Time = time.Unix(0, int64(f*1e9))
		return nil
	}
	abs := n
	if abs < 0 {
		abs = -abs
	}
	switch {
	case abs >= 1e17:
		t.Time = time.Unix(0, n)
	case abs >= 1e14:
		t.Time = time.UnixMicro(n)
	case abs >= 1e11:
		t.Time = time.UnixMilli(n)
	default:
		t.Time = time.Unix(n, 0)
	}
	return nil
}

// MarshalJSON writes RFC 3339 (or null for the zero time).
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return t.Time.MarshalJSON()
}

// User is the caller (GET /api/v1/me).
type User struct {
	ID          ID        `json:"id"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	Plan        string    `json:"plan"`
	AvatarURL   string    `json:"avatar_url,omitempty"`
	TOTPEnabled bool      `json:"totp_enabled,omitempty"`
	Auth        string    `json:"auth,omitempty"`
	CreatedAt   Timestamp `json:"created_at"`
}

// App is an app as the API shows it.
type App struct {
	UUID            string    `json:"uuid"`
	Name            string    `json:"name"`
	Subdomain       string    `json:"subdomain"`
	URL             string    `json:"url"`
	Status          string    `json:"status"`
	Runtime         string    `json:"runtime"`
	GitRepo         string    `json:"git_repo"`
	GitBranch       string    `json:"git_branch"`
	BuildCommand    string    `json:"build_command"`
	RunCommand      string    `json:"run_command"`
	Dockerfile      string    `json:"dockerfile"`
	Port            int       `json:"port"`
	CommitSHA       string    `json:"commit_sha"`
	AutoDeploy      bool      `json:"auto_deploy"`
	RestartCount    int64     `json:"restart_count"`
	ViolationReason string    `json:"violation_reason"`
	CreatedAt       Timestamp `json:"created_at"`
	UpdatedAt       Timestamp `json:"updated_at"`
	// Stats is nil when the app reported no resource usage yet.
	Stats *AppStats `json:"stats"`
}

// AppStats is an app's latest resource usage.
type AppStats struct {
	CPUPercent float64   `json:"cpu_percent"`
	MemBytes   int64     `json:"mem_bytes"`
	MemLimit   int64     `json:"mem_limit"`
	NetMbps    float64   `json:"net_mbps"`
	UpdatedAt  Timestamp `json:"updated_at"`
}

// Deployment statuses.
const (
	DeploymentPending   = "pending"
	DeploymentBuilding  = "building"
	DeploymentDeploying = "deploying"
	DeploymentSucceeded = "succeeded"
	DeploymentFailed    = "failed"
	DeploymentCancelled = "cancelled"
)

// Deployment is one build and rollout of an app.
type Deployment struct {
	ID            ID        `json:"id"`
	AppUUID       string    `json:"app_uuid"`
	Status        string    `json:"status"`
	Trigger       string    `json:"trigger"`
	CommitSHA     string    `json:"commit_sha"`
	CommitMessage string    `json:"commit_message"`
	Branch        string    `json:"branch"`
	Error         string    `json:"error"`
	StartedAt     Timestamp `json:"started_at"`
	FinishedAt    Timestamp `json:"finished_at"`
	CreatedAt     Timestamp `json:"created_at"`
	// BuildLogs is set by GetDeployment only: the log so far, capped to
	// its head and tail around wsproto.TruncationMarker when long.
	BuildLogs string `json:"build_logs,omitempty"`
}

// Done reports whether the deployment reached a final status.
func (d *Deployment) Done() bool {
	switch d.Status {
	case DeploymentSucceeded, DeploymentFailed, DeploymentCancelled:
		return true
	}
	return false
}

// Job statuses.
const (
	JobPending    = "pending"
	JobAssigned   = "assigned"
	JobProcessing = "processing"
	JobCompleted  = "completed"
	JobFailed     = "failed"
	JobCancelled  = "cancelled"
)

// Job is a unit of work for a worker (deploy, start, stop…).
type Job struct {
	ID       ID     `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Message  string `json:"message"`
	Progress int64  `json:"progress"`
}

// Done reports whether the job reached a final status.
func (j *Job) Done() bool {
	switch j.Status {
	case JobCompleted, JobFailed, JobCancelled:
		return true
	}
	return false
}

// Accepted is the answer to a request the platform carries out later
// (deploy, start, stop, restart): the job doing it and, for a deploy or a
// restart, the deployment.
type Accepted struct {
	Deployment *Deployment `json:"deployment"`
	Job        *Job        `json:"job"`
}

// CreateApp describes an app to create. Empty fields are left out (the
// server fills in defaults; an empty Name gets a generated one).
type CreateApp struct {
	Name         string            `json:"name,omitempty"`
	GitRepo      string            `json:"git_repo"`
	GitBranch    string            `json:"git_branch,omitempty"`
	BuildCommand string            `json:"build_command,omitempty"`
	RunCommand   string            `json:"run_command,omitempty"`
	Dockerfile   string            `json:"dockerfile,omitempty"`
	Port         int               `json:"port,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	// Deploy starts the first deployment at once.
	Deploy bool `json:"deploy,omitempty"`
}

// Created is the answer to CreateApp: the app and, when it was asked to
// deploy, its first deployment.
type Created struct {
	App        *App        `json:"app"`
	Deployment *Deployment `json:"deployment"`
}

// AppPatch changes an app's spec: nil fields are left as they are.
type AppPatch struct {
	GitRepo      *string `json:"git_repo,omitempty"`
	GitBranch    *string `json:"git_branch,omitempty"`
	BuildCommand *string `json:"build_command,omitempty"`
	RunCommand   *string `json:"run_command,omitempty"`
	Dockerfile   *string `json:"dockerfile,omitempty"`
	Port         *int    `json:"port,omitempty"`
	AutoDeploy   *bool   `json:"auto_deploy,omitempty"`
}

// Deploy asks for a deployment of a branch or a commit; empty fields mean
// the app's branch and its head.
type Deploy struct {
	Branch    string `json:"branch,omitempty"`
	CommitSHA string `json:"commit_sha,omitempty"`
}

// EnvVar is one of an app's environment variables.
type EnvVar struct {
	Key       string    `json:"key"`
	Value     string    `json:"value"`
	UpdatedAt Timestamp `json:"updated_at"`
}

// LogLine is one line an app wrote.
type LogLine struct {
	// App is the app's UUID.
	App string    `json:"app"`
	TS  Timestamp `json:"ts"`
	// Stream is "stdout", "stderr" or "system".
	Stream string `json:"stream"`
	Line   string `json:"line"`
}

// Domain is a custom hostname of an app.
type Domain struct {
	ID                ID        `json:"id"`
	Hostname          string    `json:"hostname"`
	Status            string    `json:"status"`
	VerificationToken string    `json:"verification_token"`
	VerifiedAt        Timestamp `json:"verified_at"`
	CreatedAt         Timestamp `json:"created_at"`
}

// DNSRecord is the record to create to prove a domain is the caller's.
type DNSRecord struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}
