package domains

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/core/store"
)

// Defaults of CheckerOptions.
const (
	// DefaultInterval is how often every domain is re-checked.
	DefaultInterval = 6 * time.Hour
	// PendingInterval is how often a new pending domain is checked during
	// PendingWindow after its creation.
	PendingInterval = 5 * time.Minute
	// PendingWindow is how long after its creation a pending domain is
	// checked every PendingInterval.
	PendingWindow = 24 * time.Hour
	// DefaultGrace is how long a verified domain's record may be missing
	// before the domain fails (see the package documentation).
	DefaultGrace = 48 * time.Hour
	// DefaultTick is how often Run looks for domains due.
	DefaultTick = time.Minute
	// DefaultBatchSize caps the domains one pass checks.
	DefaultBatchSize = 200
	// DefaultConcurrency caps the lookups in flight.
	DefaultConcurrency = 16
	// StaleClaimAge is how old another user's unverified (pending or
	// failed) claim on a hostname must be before a new claim replaces it
	// (store.NewDomain.ReplaceStaleBefore): an unproven claim must not
	// block the name's real owner forever.
	StaleClaimAge = 7 * 24 * time.Hour
)

// CheckerStore is what the Checker needs from the store (*store.Store).
type CheckerStore interface {
	DomainsDueForCheck(ctx context.Context, due store.DomainDue, limit int) ([]*store.Domain, error)
	RecordDomainChecks(ctx context.Context, at, failBefore time.Time, checks []store.DomainCheck) ([]store.DomainTransition, error)
	WithTryAdvisoryLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (bool, error)
}

// Lookup checks one domain's record (*Verifier).
type Lookup interface {
	Check(ctx context.Context, host, token string) error
}

// CheckerOptions configure a Checker.
type CheckerOptions struct {
	Store    CheckerStore
	Verifier Lookup
	// Interval (0: DefaultInterval), Grace (0: DefaultGrace), Tick (0:
	// DefaultTick), BatchSize (0: DefaultBatchSize) and Concurrency (0:
	// DefaultConcurrency) tune the loop.
	Interval, Grace, Tick  time.Duration
	BatchSize, Concurrency int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// OnTransition, when set, is called after each pass that changed
	// statuses (events, metrics).
	OnTransition func(ctx context.Context, ts []store.DomainTransition)
	Logger       hclog.Logger
}

// Checker re-checks domains periodically; one core of a cluster does it
// at a time (store.LockCheckDomains).
type Checker struct {
	o   CheckerOptions
	log hclog.Logger
}

// NewChecker checks o and returns a Checker; nothing runs before Run.
func NewChecker(o CheckerOptions) (*Checker, error) {
	if o.Store == nil || o.Verifier == nil {
		return nil, errors.New("domains: checker: Store and Verifier are required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Checker{o: o, log: o.Logger}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	return c, nil
}

// PassResult is what one pass did.
type PassResult struct {
	// Ran is false when another core holds the lock.
	Ran bool
	// Checked is how many domains were checked.
	Checked int
	// Full reports that the pass took a whole batch: more may be due.
	Full bool
	// Transitions are the status changes.
	Transitions []store.DomainTransition
}

// Pass checks one batch of the domains due now, unless another core is
// doing it: a query for the batch, the lookups with bounded concurrency,
// and one write for all results. A pass cut short by ctx writes nothing.
func (c *Checker) Pass(ctx context.Context) (PassResult, error) {
	var res PassResult
	ran, err := c.o.Store.WithTryAdvisoryLock(ctx, store.LockCheckDomains, func(ctx context.Context) error {
		now := c.o.Now()
		due, err := c.o.Store.DomainsDueForCheck(ctx, store.DomainDue{
			CheckedBefore:        now.Add(-c.o.Interval),
			PendingCreatedAfter:  now.Add(-PendingWindow),
			PendingCheckedBefore: now.Add(-PendingInterval),
		}, c.o.BatchSize)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return nil
		}
		checks := c.checkAll(ctx, due)
		if err := ctx.Err(); err != nil {
			return err
		}
		ts, err := c.o.Store.RecordDomainChecks(ctx, now, now.Add(-c.o.Grace), checks)
		if err != nil {
			return err
		}
		res.Checked, res.Full, res.Transitions = len(due), len(due) == c.o.BatchSize, ts
		return nil
	})
	res.Ran = ran
	if err != nil {
		return res, fmt.Errorf("domains: check pass: %w", err)
	}
	for _, t := range res.Transitions {
		c.log.Info("custom domain status changed", "domain_id", t.ID, "hostname", t.Hostname, "from", t.From, "to", t.To)
	}
	if len(res.Transitions) > 0 && c.o.OnTransition != nil {
		c.o.OnTransition(ctx, res.Transitions)
	}
	return res, nil
}

// checkAll looks every domain up, Concurrency at a time.
func (c *Checker) checkAll(ctx context.Context, ds []*store.Domain) []store.DomainCheck {
	out := make([]store.DomainCheck, len(ds))
	sem := make(chan struct{}, c.o.Concurrency)
	var wg sync.WaitGroup
	for i, d := range ds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = Result(d.ID, c.o.Verifier.Check(ctx, d.Hostname, d.Token))
		})
	}
	wg.Wait()
	return out
}

// Result turns the outcome of a Check into the store's record of it.
func Result(id int64, err error) store.DomainCheck {
	if err == nil {
		return store.DomainCheck{ID: id, OK: true}
	}
	var ce *CheckError
	absent := errors.As(err, &ce) && ce.Absent()
	return store.DomainCheck{ID: id, Absent: absent, Error: err.Error()}
}

// Run makes a pass now and every Tick until ctx ends; after a full pass
// the next one starts at once.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := c.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Error("checking custom domains failed", "error", err)
		}
		next := c.o.Tick
		if err == nil && res.Full {
			next = 0
		}
		t.Reset(next)
	}
}
