package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/daemon"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/units"
)

const workerUsage = `usage:
  wisehosting worker add -name NAME [-zone ZONE] [-address ADDR] [-allow-loopback] [-config FILE]
  wisehosting worker rotate-key NAME [-config FILE]
  wisehosting worker list [-json] [-config FILE]`

func cmdWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s", workerUsage)
	}
	fs := newFlags("worker "+args[0], stderr)
	cfgPath := fs.String("config", defaultConfig(), "config file")
	switch args[0] {
	case "add":
		name := fs.String("name", "", "worker name (unique): 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or digit")
		zone := fs.String("zone", "default", "zone, for spread placement: a DNS label (a-z, 0-9 and inner '-')")
		address := fs.String("address", "", "private IP address or host name the edge proxy dials; when empty, the worker's first registration fills it in")
		allowLoopback := fs.Bool("allow-loopback", false, "accept a loopback -address, for single-machine setups (the core must allow it too: worker { allow_loopback_address = true })")
		if err := fs.Parse(args[1:]); err != nil {
			return errUsage
		}
		if *name == "" || fs.NArg() > 0 {
			return usageErr("%s", workerUsage)
		}
		// Flags are checked before anything is opened; only the loopback
		// rule needs the configuration.
		if err := checkWorkerFlags(*name, *zone, *address); err != nil {
			return err
		}
		cfg, err := loadConfig(*cfgPath, stderr)
		if err != nil {
			return err
		}
		if err := checkLoopback(*address, *allowLoopback || cfg.Worker.AllowLoopbackAddress); err != nil {
			return err
		}
		return withDatabase(ctx, cfg, func(db *daemon.Database) error {
			w, key, err := workerauth.AddWorker(ctx, db.Store, db.Cipher, *name, *zone, *address)
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("a worker named %q already exists (use rotate-key to issue it a new key)", *name)
			}
			if errors.Is(err, store.ErrInvalid) {
				return fmt.Errorf("worker %q was refused by the database: %w", *name, err)
			}
			if err != nil {
				return err
			}
			printKey(stdout, w, key, "added")
			return nil
		})
	case "rotate-key":
		if err := parseInterspersed(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usageErr("%s", workerUsage)
		}
		return withStore(ctx, *cfgPath, stderr, func(db *daemon.Database) error {
			w, err := db.Store.FindWorkerByName(ctx, fs.Arg(0))
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no worker named %q", fs.Arg(0))
			}
			if err != nil {
				return err
			}
			w, key, err := workerauth.RotateKey(ctx, db.Store, db.Cipher, w.ID)
			if err != nil {
				return err
			}
			printKey(stdout, w, key, "rotated the key of")
			return nil
		})
	case "list":
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args[1:]); err != nil {
			return errUsage
		}
		if fs.NArg() > 0 {
			return usageErr("%s", workerUsage)
		}
		return withStore(ctx, *cfgPath, stderr, func(db *daemon.Database) error {
			ws, err := db.Store.ListWorkers(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(ws)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tZONE\tADDRESS\tCPU (used/cap)\tMEMORY (used/cap)\tLAST HEARTBEAT")
			for _, w := range ws {
				hb := "never"
				if w.LastHeartbeat != nil {
					hb = time.Since(*w.LastHeartbeat).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d/%dm\t%s/%s\t%s\n", w.ID, w.Name, w.Status, w.Zone,
					orDash(w.Address), w.UsedCPU, w.CapacityCPU, units.FormatSize(w.UsedMemory),
					units.FormatSize(w.CapacityMemory), hb)
			}
			return tw.Flush()
		})
	default:
		return usageErr("unknown worker command %q\n%s", args[0], workerUsage)
	}
}

// workerNameRE is the rule the database enforces on workers.name.
var workerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// checkWorkerFlags checks the flags of `worker add` as the API and the
// database will: the name, the zone (a DNS label) and the address (an IP
// address or host name the edge proxy may dial; loopback addresses pass
// here and are left to checkLoopback). Its errors are usage errors.
func checkWorkerFlags(name, zone, address string) error {
	if !workerNameRE.MatchString(name) {
		return usageErr("worker name %q is invalid: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	if err := hostname.ValidLabel(zone); err != nil {
		return usageErr("-zone: %v", err)
	}
	if address != "" {
		if err := api.CheckWorkerAddress(address, true); err != nil {
			return usageErr("-address: %v", err)
		}
	}
	return nil
}

// checkLoopback refuses a loopback address unless allowed (-allow-loopback
// or worker.allow_loopback_address); its error is a usage error.
func checkLoopback(address string, allowed bool) error {
	if address == "" {
		return nil
	}
	if err := api.CheckWorkerAddress(address, allowed); err != nil {
		if errors.Is(err, api.ErrLoopbackAddress) {
			return usageErr("-address: %v; for a single-machine setup pass -allow-loopback, or set worker { allow_loopback_address = true } in the configuration (the core needs that setting to accept the worker)", err)
		}
		return usageErr("-address: %v", err)
	}
	return nil
}

// parseInterspersed parses flags that may come before or after positional
// arguments ("rotate-key NAME -config F").
func parseInterspersed(fs interface {
	Parse([]string) error
	Args() []string
}, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

func printKey(w io.Writer, wk *store.Worker, key, verb string) {
	fmt.Fprintf(w, "%s worker %q (id %d).\n\n", verb, wk.Name, wk.ID)
	fmt.Fprintf(w, "API key (shown once; only its hash is stored):\n\n  %s\n\n", key)
	fmt.Fprintf(w, "Start the worker with it, e.g. WISEHOSTING_WORKER_KEY=<key> wisehosting worker run -core <url>\n")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// withStore loads the config, opens the (possibly embedded) database, runs
// fn and closes everything.
func withStore(ctx context.Context, cfgPath string, stderr io.Writer, fn func(*daemon.Database) error) error {
	cfg, err := loadConfig(cfgPath, stderr)
	if err != nil {
		return err
	}
	return withDatabase(ctx, cfg, fn)
}

// withDatabase opens the (possibly embedded) database of a loaded config,
// runs fn and closes everything.
func withDatabase(ctx context.Context, cfg *config.Config, fn func(*daemon.Database) error) error {
	log := daemon.Logger(cfg.Logging)
	cfg.Database.MinConns = 1 // a short-lived command needs no warm pool
	db, err := daemon.OpenDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	return fn(db)
}
