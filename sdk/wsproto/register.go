package wsproto

import "time"

// Runtimes a worker can offer.
const (
	RuntimeExec   = "exec"
	RuntimePodman = "podman"
)

// Capacity is what a worker offers to the scheduler.
type Capacity struct {
	// CPU in millicores (1000 = one core).
	CPU int64 `json:"cpu"`
	// Memory in bytes.
	Memory int64 `json:"memory"`
}

// RegisterRequest is the body of POST /v1/workers/register, authenticated
// with the worker's own API key as a Bearer token.
type RegisterRequest struct {
	// Name, when set, must equal the name the operator gave the worker.
	Name string `json:"name,omitempty"`
	// IP is informational (shown to operators); routes never use it.
	IP string `json:"ip,omitempty"`
	// Address is the private (e.g. WireGuard) IP or hostname the edge proxy
	// dials to reach this worker's apps.
	Address string `json:"address"`
	// Zone groups workers for spread placement; default "default".
	Zone string `json:"zone,omitempty"`
	// Region is a free-form label.
	Region   string   `json:"region,omitempty"`
	Capacity Capacity `json:"capacity"`
	// Runtimes lists what the worker can run: exec, podman.
	Runtimes []string `json:"runtimes"`
	// Version is the worker agent's version.
	Version string `json:"version,omitempty"`
}

// WorkerInfo is the core's view of a worker, returned on registration.
type WorkerInfo struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	Zone     string   `json:"zone"`
	Status   string   `json:"status"`
	Capacity Capacity `json:"capacity"`
	Runtimes []string `json:"runtimes"`
}

// TokenResponse carries a worker JWT (refresh it RefreshSkew before it
// expires).
type TokenResponse struct {
	Token          string    `json:"token"`
	TokenExpiresAt time.Time `json:"token_expires_at"`
}

// RegisterResponse is the answer to a registration.
type RegisterResponse struct {
	Worker WorkerInfo `json:"worker"`
	TokenResponse
	// HeartbeatIntervalMS is how often the core expects a heartbeat; 0
	// means DefaultHeartbeatInterval.
	HeartbeatIntervalMS int64 `json:"heartbeat_interval_ms"`
}

// DefaultHeartbeatInterval is the heartbeat interval when the register
// response does not give one (and the core's default).
const DefaultHeartbeatInterval = 15 * time.Second

// RefreshSkew is how long before expiry a worker refreshes its JWT.
const RefreshSkew = 2 * time.Minute
