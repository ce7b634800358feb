package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Worker is a node that runs apps and holds one WebSocket to a core. Its API
// key hash and envelope key are not part of this struct: they are read only by
// the authentication path (FindWorkerAuth*).
type Worker struct {
	ID             int64      `json:"id"`
	Name           string     `json:"name"`
	IP             string     `json:"ip"`
	Address        string     `json:"address"`
	Zone           string     `json:"zone"`
	AddressPinned  bool       `json:"address_pinned"`
	ZonePinned     bool       `json:"zone_pinned"`
	RegionName     string     `json:"region_name"`
	KeyID          string     `json:"-"`
	Status         string     `json:"status"`
	Runtimes       []string   `json:"runtimes"`
	CapacityCPU    int64      `json:"capacity_cpu"`
	CapacityMemory int64      `json:"capacity_memory"`
	UsedCPU        int64      `json:"used_cpu"`
	UsedMemory     int64      `json:"used_memory"`
	CPUPercent     float64    `json:"cpu_percent"`
	MemoryPercent  float64    `json:"memory_percent"`
	DiskPercent    float64    `json:"disk_percent"`
	RunningApps    int64      `json:"running_apps"`
	Version        string     `json:"version"`
	LastHeartbeat  *time.Time `json:"last_heartbeat,omitempty"`
	KeyRotatedAt   time.Time  `json:"key_rotated_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

const workerColumns = `id, name, ip, address, zone, address_pinned, zone_pinned, region_name, key_id, status, runtimes,
	capacity_cpu, capacity_memory, used_cpu, used_memory, cpu_percent, memory_percent, disk_percent,
	running_apps, version, last_heartbeat, key_rotated_at, created_at, updated_at`

// scanWorker reads one row selected with workerColumns.
func scanWorker(row pgx.Row, extra ...any) (*Worker, error) {
	var w Worker
	dest := []any{&w.ID, &w.Name, &w.IP, &w.Address, &w.Zone, &w.AddressPinned, &w.ZonePinned, &w.RegionName, &w.KeyID, &w.Status,
		&w.Runtimes, &w.CapacityCPU, &w.CapacityMemory, &w.UsedCPU, &w.UsedMemory, &w.CPUPercent,
		&w.MemoryPercent, &w.DiskPercent, &w.RunningApps, &w.Version, &w.LastHeartbeat,
		&w.KeyRotatedAt, &w.CreatedAt, &w.UpdatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	return &w, nil
}

// WorkerCredentials is what the store keeps of a minted worker key
// (core/secrets.Cipher.NewWorkerCredentials): the lookup hash, the key id,
// and the envelope key already sealed with the column cipher. The raw key is
// never stored; a database CHECK refuses an envelope key in the clear.
type WorkerCredentials struct {
	// APIKeyHash is sha256(raw key) in hex, the lookup hash.
	APIKeyHash string
	// KeyID is the random id carried as the JWT kid.
	KeyID string
	// SealedEnvelopeKey is the encrypted envelope HMAC key ("v1:…").
	SealedEnvelopeKey string
}

// NewWorker holds what CreateWorker needs.
type NewWorker struct {
	Name    string
	Zone    string
	Address string
	Creds   WorkerCredentials
}

// CreateWorker records a worker minted by the operator (`wisehosting worker
// add`). It starts offline; a duplicate name is ErrConflict. An address or a
// zone other than "default" given here is pinned: the worker's own reports
// never override it.
func (s *Store) CreateWorker(ctx context.Context, nw NewWorker) (*Worker, error) {
	zone := nw.Zone
	if zone == "" {
		zone = "default"
	}
	w, err := scanWorker(s.pool.QueryRow(ctx, `
		INSERT INTO workers (name, zone, address, address_pinned, zone_pinned, api_key_hash, key_id, envelope_key)
		VALUES ($1, $2::text, $3, $3 <> '', $2::text <> 'default', $4, $5, $6) RETURNING `+workerColumns,
		nw.Name, zone, nw.Address, nw.Creds.APIKeyHash, nw.Creds.KeyID, nw.Creds.SealedEnvelopeKey))
	if err != nil {
		return nil, mapErr("create worker", err)
	}
	return w, nil
}

// RotateWorkerKey replaces a worker's credentials. Every JWT minted before
// carries the old kid and stops working; the old raw key no longer resolves.
// In the same transaction it NOTIFYs ChannelWorkerKeys with the worker's id,
// so every core (the rotation usually runs in another process) drops its
// cached credentials and closes the worker's live connection at commit.
func (s *Store) RotateWorkerKey(ctx context.Context, workerID int64, creds WorkerCredentials) (*Worker, error) {
	var w *Worker
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		w, err = scanWorker(tx.QueryRow(ctx, `
			UPDATE workers SET api_key_hash = $2, key_id = $3, envelope_key = $4,
				key_rotated_at = now(), updated_at = now()
			WHERE id = $1 RETURNING `+workerColumns, workerID, creds.APIKeyHash, creds.KeyID, creds.SealedEnvelopeKey))
		if err != nil {
			return mapErr("rotate worker key", err)
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ChannelWorkerKeys, strconv.FormatInt(workerID, 10))
		return mapErr("rotate worker key: notify", err)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// WorkerAuth is a worker with what the authentication path needs.
type WorkerAuth struct {
	*Worker
	// SealedEnvelopeKey is the encrypted envelope HMAC key; open it with
	// core/secrets.Cipher.OpenEnvelopeKey.
	SealedEnvelopeKey string
}

func (s *Store) findWorkerAuth(ctx context.Context, op, where string, arg any) (*WorkerAuth, error) {
	var sealed string
	w, err := scanWorker(s.pool.QueryRow(ctx, `SELECT `+workerColumns+`, envelope_key FROM workers WHERE `+where, arg), &sealed)
	if err != nil {
		return nil, mapErr(op, err)
	}
	return &WorkerAuth{Worker: w, SealedEnvelopeKey: sealed}, nil
}

// FindWorkerAuthByKeyHash resolves a raw API key's lookup hash. Offline
// workers resolve too, so a worker can reconnect after an outage.
func (s *Store) FindWorkerAuthByKeyHash(ctx context.Context, apiKeyHash string) (*WorkerAuth, error) {
	return s.findWorkerAuth(ctx, "find worker by key", "api_key_hash = $1", apiKeyHash)
}

// FindWorkerAuthByID loads a worker with its envelope key (the JWT path).
func (s *Store) FindWorkerAuthByID(ctx context.Context, id int64) (*WorkerAuth, error) {
	return s.findWorkerAuth(ctx, "find worker auth", "id = $1", id)
}

// FindWorkerByID returns the worker or ErrNotFound.
func (s *Store) FindWorkerByID(ctx context.Context, id int64) (*Worker, error) {
	w, err := scanWorker(s.pool.QueryRow(ctx, `SELECT `+workerColumns+` FROM workers WHERE id = $1`, id))
	if err != nil {
		return nil, mapErr("find worker", err)
	}
	return w, nil
}

// FindWorkerByName returns the worker or ErrNotFound.
func (s *Store) FindWorkerByName(ctx context.Context, name string) (*Worker, error) {
	w, err := scanWorker(s.pool.QueryRow(ctx, `SELECT `+workerColumns+` FROM workers WHERE name = $1`, name))
	if err != nil {
		return nil, mapErr("find worker by name", err)
	}
	return w, nil
}

// ListWorkers returns every worker ordered by name.
func (s *Store) ListWorkers(ctx context.Context) ([]*Worker, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+workerColumns+` FROM workers ORDER BY name`)
	if err != nil {
		return nil, mapErr("list workers", err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Worker, error) { return scanWorker(r) })
	if err != nil {
		return nil, mapErr("list workers", err)
	}
	return ws, nil
}

// Registration is what a worker reports when it registers.
type Registration struct {
	// IP is informational; routes never use it.
	IP string
	// Address is the private (e.g. WireGuard) address the edge proxy dials.
	Address        string
	Zone           string
	RegionName     string
	CapacityCPU    int64 // millicores
	CapacityMemory int64 // bytes
	Runtimes       []string
	Version        string
}

// RegisterWorker stores what the worker reported about itself; a pinned
// address or zone (see CreateWorker) is kept whatever it reports. A capacity
// below what is already reserved on the worker is refused with an error
// wrapping ErrCapacity (drain apps first): accepting it would commit the
// worker beyond what it declares.
func (s *Store) RegisterWorker(ctx context.Context, workerID int64, r Registration) (*Worker, error) {
	if r.CapacityCPU < 0 || r.CapacityMemory < 0 {
		return nil, fmt.Errorf("store: register worker: negative capacity: %w", ErrInvalid)
	}
	zone := r.Zone
	if zone == "" {
		zone = "default"
	}
	runtimes := r.Runtimes
	if len(runtimes) == 0 {
		runtimes = []string{"exec"}
	}
	w, err := scanWorker(s.pool.QueryRow(ctx, `
		UPDATE workers SET ip = $2,
			address = CASE WHEN address_pinned OR $3 = '' THEN address ELSE $3 END,
			zone = CASE WHEN zone_pinned THEN zone ELSE $4 END,
			region_name = $5, capacity_cpu = $6,
			capacity_memory = $7, runtimes = $8, version = $9, updated_at = now()
		WHERE id = $1 AND used_cpu <= $6 AND used_memory <= $7 RETURNING `+workerColumns,
		workerID, r.IP, r.Address, zone, r.RegionName, r.CapacityCPU, r.CapacityMemory, runtimes, r.Version))
	if err == nil {
		return w, nil
	}
	if err != pgx.ErrNoRows {
		return nil, mapErr("register worker", err)
	}
	cur, ferr := s.FindWorkerByID(ctx, workerID)
	if ferr != nil {
		return nil, ferr
	}
	return nil, fmt.Errorf("store: register worker %s: capacity %d mCPU / %d bytes is below what is reserved on it (%d mCPU / %d bytes): %w",
		cur.Name, r.CapacityCPU, r.CapacityMemory, cur.UsedCPU, cur.UsedMemory, ErrCapacity)
}

// SetWorkerStatus sets online, offline or draining. Going online stamps the
// heartbeat so the health monitor gives the worker a full timeout.
func (s *Store) SetWorkerStatus(ctx context.Context, workerID int64, status string) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE workers SET status = $2, updated_at = now(),
			last_heartbeat = CASE WHEN $2 = 'online' THEN now() ELSE last_heartbeat END
		WHERE id = $1`, workerID, status)
	if err != nil {
		return mapErr("set worker status", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("set worker status", pgx.ErrNoRows)
	}
	return nil
}

// Heartbeat is one worker's live resource report.
type Heartbeat struct {
	WorkerID int64
	// At is when the core received the beat (the core's clock, never the
	// worker's: a skewed worker must not look fresh or stale).
	At            time.Time
	CPUPercent    float64
	MemoryPercent float64
	DiskPercent   float64
	RunningApps   int64
}

// UpdateHeartbeats applies many workers' heartbeats in one statement (the hub
// coalesces them per interval). Only the newest beat per worker counts. It
// never changes a worker's status: only the hub's connect path brings a
// worker online, so a late batch cannot revive a worker the health monitor
// just took offline (and whose apps it stopped).
func (s *Store) UpdateHeartbeats(ctx context.Context, beats []Heartbeat) error {
	if len(beats) == 0 {
		return nil
	}
	n := len(beats)
	ids, ats := make([]int64, n), make([]time.Time, n)
	cpu, mem, disk := make([]float64, n), make([]float64, n), make([]float64, n)
	apps := make([]int64, n)
	for i, b := range beats {
		ids[i], ats[i], cpu[i], mem[i], disk[i], apps[i] = b.WorkerID, b.At, b.CPUPercent, b.MemoryPercent, b.DiskPercent, b.RunningApps
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE workers w SET last_heartbeat = b.at, cpu_percent = b.cpu, memory_percent = b.mem,
			disk_percent = b.disk, running_apps = b.apps
		FROM (SELECT DISTINCT ON (id) * FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[],
				$4::float8[], $5::float8[], $6::bigint[]) AS t(id, at, cpu, mem, disk, apps)
			ORDER BY id, at DESC) b
		WHERE w.id = b.id AND (w.last_heartbeat IS NULL OR w.last_heartbeat <= b.at)`,
		ids, ats, cpu, mem, disk, apps)
	if err != nil {
		return mapErr("update heartbeats", err)
	}
	return nil
}
