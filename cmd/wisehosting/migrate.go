package main

import (
	"context"
	"fmt"
	"io"

	"github.com/wisehosting/wisehosting/core/daemon"
	"github.com/wisehosting/wisehosting/core/store"
)

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	cfgPath := fs.String("config", defaultConfig(), "config file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	action := "up"
	if fs.NArg() > 0 {
		action = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil { // flags may follow the action
			return errUsage
		}
	}
	if fs.NArg() > 0 || (action != "up" && action != "status") {
		return usageErr("migrate [up|status] [-config FILE]")
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return err
	}
	log := daemon.Logger(cfg.Logging)
	if action == "status" {
		db, err := daemon.Connect(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer db.Close(context.WithoutCancel(ctx))
		st, err := store.Status(ctx, db.ConnString)
		printStatus(stdout, st)
		return err
	}
	db, err := daemon.OpenDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	printStatus(stdout, db.Migration)
	return nil
}

func printStatus(w io.Writer, st store.MigrationStatus) {
	fmt.Fprintf(w, "schema version %d of %d\n", st.Current, st.Latest)
	for _, p := range st.Pending {
		fmt.Fprintf(w, "pending: %s\n", p)
	}
}
