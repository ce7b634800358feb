package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/units"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// WorkerAuthenticator resolves worker credentials (core/workerauth).
type WorkerAuthenticator interface {
	AuthenticateKey(ctx context.Context, rawKey string) (*workerauth.Identity, error)
	IssueToken(w *store.Worker) (string, time.Time, error)
}

// WorkerStore is what the worker endpoints write.
type WorkerStore interface {
	RegisterWorker(ctx context.Context, workerID int64, r store.Registration) (*store.Worker, error)
}

// Bounds of the capacity a worker may report; anything larger is a bug or
// a lie, and would let the scheduler pile every app onto one worker.
const (
	// MaxWorkerCPU is the largest capacity.cpu accepted: 1,000,000
	// millicores (1000 cores).
	MaxWorkerCPU = 1_000_000
	// MaxWorkerMemory is the largest capacity.memory accepted: 1 PiB.
	MaxWorkerMemory = 1 << 50
)

// WorkerRoutes serves the worker registration endpoints.
type WorkerRoutes struct {
	// Auth resolves the workers' API keys and issues their JWTs.
	Auth WorkerAuthenticator
	// Store records registrations.
	Store WorkerStore
	// AllowLoopbackAddress accepts loopback worker addresses (127.0.0.0/8,
	// ::1, localhost names). Set it from the config's
	// worker.allow_loopback_address, for tests and single-machine setups;
	// off, a compromised worker cannot point the edge proxy at the proxy
	// host itself. See CheckWorkerAddress.
	AllowLoopbackAddress bool
	// HeartbeatInterval is how often workers should heartbeat
	// (worker.heartbeat_interval); it is part of the register response.
	// Zero means wsproto.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
}

// Register mounts POST /v1/workers/register and /v1/workers/refresh-token.
// Both take the worker's raw API key as the Bearer token: never a JWT, and
// never the server secret.
func (wr *WorkerRoutes) Register(m Mux) {
	m.Handle(http.MethodPost, "/v1/workers/register", wr.register)
	m.Handle(http.MethodPost, "/v1/workers/refresh-token", wr.refresh)
}

// defaultZone is the zone of a worker the operator gave none (the store's
// default).
const defaultZone = "default"

// ErrLoopbackAddress is wrapped by CheckWorkerAddress's error for a
// loopback address when loopback addresses are not allowed, so callers can
// say how to allow them.
var ErrLoopbackAddress = errors.New("loopback address")

// CheckWorkerAddress checks a worker's address, the host the edge proxy
// dials to reach the worker's apps: an IP address, or a host name as
// sdk/hostname.Valid accepts it, without scheme or port. Private (RFC 1918,
// WireGuard, ULA) addresses are what it is meant for. It refuses addresses
// the proxy must never dial: unspecified ("this network", 0.0.0.0/8 and
// ::), link-local (169.254.0.0/16, which holds the cloud metadata endpoint
// 169.254.169.254, and fe80::/10), multicast and the broadcast address; and,
// unless allowLoopback is set, loopback addresses and localhost names (an
// error wrapping ErrLoopbackAddress).
//
// A host name is not resolved here: what it points to is up to whoever
// controls its DNS. An operator who needs that guarantee sets an IP address
// with `worker add -address`, which a worker cannot override.
func CheckWorkerAddress(addr string, allowLoopback bool) error {
	if addr == "" {
		return errors.New("address is empty")
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("address %q has an IPv6 zone; use an address the edge proxy can dial without one", addr)
		}
		ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
		switch {
		case ip.IsUnspecified(), ip.Is4() && ip.As4()[0] == 0:
			return fmt.Errorf("address %q is unspecified (0.0.0.0/8 or ::), which the edge proxy would take as its own host", addr)
		case ip.IsLoopback():
			if !allowLoopback {
				return fmt.Errorf("address %q is a %w: the edge proxy would dial its own host", addr, ErrLoopbackAddress)
			}
		case ip.IsLinkLocalUnicast():
			return fmt.Errorf("address %q is link-local (169.254.0.0/16 or fe80::/10, where cloud metadata services live)", addr)
		case ip.IsMulticast():
			return fmt.Errorf("address %q is a multicast address", addr)
		case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return fmt.Errorf("address %q is the broadcast address", addr)
		}
		return nil
	}
	if addr == "localhost" || strings.HasSuffix(addr, ".localhost") || addr == "localhost.localdomain" {
		// RFC 6761: localhost and *.localhost always resolve to loopback.
		if !allowLoopback {
			return fmt.Errorf("address %q is a %w name: the edge proxy would dial its own host", addr, ErrLoopbackAddress)
		}
		if addr == "localhost" {
			return nil // the one single-label name with a fixed meaning
		}
	}
	if err := hostname.Valid(addr); err != nil {
		return fmt.Errorf("address must be an IP address or a host name, without scheme or port: %w", err)
	}
	return nil
}

func (wr *WorkerRoutes) authenticate(req bunrouter.Request) (*workerauth.Identity, error) {
	id, err := wr.Auth.AuthenticateKey(req.Context(), Bearer(req.Request))
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, workerauth.ErrUnknownKey), errors.Is(err, workerauth.ErrNoCredential):
		return nil, ErrUnauthorized
	default:
		return nil, ErrInternal.WithCause(err)
	}
}

func (wr *WorkerRoutes) register(w http.ResponseWriter, req bunrouter.Request) error {
	id, err := wr.authenticate(req)
	if err != nil {
		return err
	}
	var in wsproto.RegisterRequest
	if err := DecodeJSON(req.Request, 64<<10, &in); err != nil {
		return err
	}
	reg, err := wr.registration(id.Worker, &in)
	if err != nil {
		return err
	}
	wk, err := wr.Store.RegisterWorker(req.Context(), id.Worker.ID, reg)
	switch {
	case errors.Is(err, store.ErrCapacity):
		return Errorf(http.StatusConflict, "capacity_below_reserved",
			"the reported capacity (%d millicores, %s) is below what apps already reserve on this worker (%d millicores, %s); "+
				"move or stop apps before lowering it",
			reg.CapacityCPU, units.FormatSize(reg.CapacityMemory), id.Worker.UsedCPU, units.FormatSize(id.Worker.UsedMemory)).WithCause(err)
	case errors.Is(err, store.ErrInvalid):
		return Errorf(http.StatusBadRequest, "invalid_registration", "the registration was refused as invalid").WithCause(err)
	case errors.Is(err, store.ErrNotFound):
		return ErrUnauthorized.WithCause(err) // the worker was deleted meanwhile
	case err != nil:
		return ErrInternal.WithCause(err)
	}
	tok, exp, err := wr.Auth.IssueToken(wk)
	if err != nil {
		return ErrInternal.WithCause(err)
	}
	return WriteJSON(w, http.StatusOK, wsproto.RegisterResponse{
		Worker: wsproto.WorkerInfo{ID: wk.ID, Name: wk.Name, Address: wk.Address, Zone: wk.Zone, Status: wk.Status,
			Capacity: wsproto.Capacity{CPU: wk.CapacityCPU, Memory: wk.CapacityMemory}, Runtimes: wk.Runtimes},
		TokenResponse:       wsproto.TokenResponse{Token: tok, TokenExpiresAt: exp},
		HeartbeatIntervalMS: wr.heartbeatInterval().Milliseconds(),
	})
}

func (wr *WorkerRoutes) heartbeatInterval() time.Duration {
	if wr.HeartbeatInterval > 0 {
		return wr.HeartbeatInterval
	}
	return wsproto.DefaultHeartbeatInterval
}

func (wr *WorkerRoutes) refresh(w http.ResponseWriter, req bunrouter.Request) error {
	id, err := wr.authenticate(req)
	if err != nil {
		return err
	}
	tok, exp, err := wr.Auth.IssueToken(id.Worker)
	if err != nil {
		return ErrInternal.WithCause(err)
	}
	return WriteJSON(w, http.StatusOK, wsproto.TokenResponse{Token: tok, TokenExpiresAt: exp})
}

// registration validates what worker wk reported and merges it with what
// the operator set. The operator's address and zone win: the worker's
// address is used only when the worker has none, its zone only when the
// worker's zone is the default. (The store keeps one address and one zone,
// so the first value a worker fills in stays until the operator changes
// it.)
func (wr *WorkerRoutes) registration(wk *store.Worker, in *wsproto.RegisterRequest) (store.Registration, error) {
	bad := func(format string, args ...any) (store.Registration, error) {
		return store.Registration{}, Errorf(http.StatusBadRequest, "invalid_registration", format, args...)
	}
	if in.Name != "" && in.Name != wk.Name {
		return bad("this API key belongs to worker %q, not %q", wk.Name, in.Name)
	}
	if in.IP != "" && net.ParseIP(in.IP) == nil {
		return bad("ip %q is not an IP address", in.IP)
	}

	// The operator's pinned address wins; otherwise the worker's report (a
	// new WireGuard address, say) updates the one it reported before.
	address, by := in.Address, "reported"
	if wk.AddressPinned {
		address, by = wk.Address, "set by the operator with `worker add -address`"
	} else if address == "" {
		address = wk.Address
	}
	if address == "" {
		return bad("address is required (here or with `worker add -address`): the private IP or host name the edge proxy dials")
	}
	if err := CheckWorkerAddress(address, wr.AllowLoopbackAddress); err != nil {
		if errors.Is(err, ErrLoopbackAddress) {
			return bad("%s (%s); loopback addresses are allowed only with worker { allow_loopback_address = true } in the core's configuration", err, by)
		}
		return bad("%s (%s)", err, by)
	}

	zone := in.Zone
	if wk.ZonePinned || zone == "" {
		zone = wk.Zone
	}
	if zone == "" {
		zone = defaultZone
	}
	if err := hostname.ValidLabel(zone); err != nil {
		return bad("zone: %s", err)
	}

	if in.Capacity.CPU <= 0 || in.Capacity.Memory <= 0 {
		return bad("capacity.cpu (millicores) and capacity.memory (bytes) must be positive")
	}
	if in.Capacity.CPU > MaxWorkerCPU {
		return bad("capacity.cpu is %d millicores; at most %d (1000 cores) is accepted", in.Capacity.CPU, MaxWorkerCPU)
	}
	if in.Capacity.Memory > MaxWorkerMemory {
		return bad("capacity.memory is %d bytes; at most %d (1 PiB) is accepted", in.Capacity.Memory, int64(MaxWorkerMemory))
	}
	runtimes := slices.Clone(in.Runtimes)
	if len(runtimes) == 0 {
		runtimes = []string{wsproto.RuntimeExec}
	}
	for _, r := range runtimes {
		if r != wsproto.RuntimeExec && r != wsproto.RuntimePodman {
			return bad("runtime %q is not one of exec, podman", r)
		}
	}
	slices.Sort(runtimes)
	runtimes = slices.Compact(runtimes)
	return store.Registration{
		IP: in.IP, Address: address, Zone: zone, RegionName: in.Region,
		CapacityCPU: in.Capacity.CPU, CapacityMemory: in.Capacity.Memory,
		Runtimes: runtimes, Version: in.Version,
	}, nil
}
