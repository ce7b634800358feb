package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/core/agent"
)

const workerRunUsage = `usage:
  WISEHOSTING_WORKER_KEY=... wisehosting worker run -core URL [-name NAME] [-address ADDR] [-zone ZONE]
      [-data-dir DIR] [-runtime exec,podman] [-port-range 20000-29999]
      [-capacity-cpu MILLICORES] [-capacity-memory SIZE] [-stop-apps-on-exit] [-log-level LEVEL]

The worker's API key (printed by 'wisehosting worker add') is read from
$WISEHOSTING_WORKER_KEY, never from a flag. On SIGINT/SIGTERM the agent stops
taking jobs, lets running ones finish, and leaves the apps running for the next
agent to adopt (-stop-apps-on-exit stops them instead).`

// workerCommand routes `wisehosting worker run` to the reference worker
// agent and every other `worker` subcommand to the key management commands.
func workerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "run" {
		return cmdWorkerRun(ctx, args[1:], stderr)
	}
	return cmdWorker(ctx, args, stdout, stderr)
}

// cmdWorkerRun runs the reference worker agent until ctx ends.
func cmdWorkerRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("worker run", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, workerRunUsage)
		fmt.Fprintln(stderr, "\nflags:")
		fs.PrintDefaults()
	}
	var o agent.Options
	fv := o.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q\n%s", fs.Args(), workerRunUsage)
	}
	if err := fv.Finish(os.Getenv); err != nil {
		return err
	}
	// Nothing started from here on may inherit the key.
	os.Unsetenv(agent.KeyEnv)

	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "worker",
		Level:  hclog.LevelFromString(o.LogLevel),
		Output: stderr,
	})
	o.Logger = logger
	client, runClient, err := agent.NewClient(&o, version, logger)
	if err != nil {
		return err
	}
	a, err := agent.New(o.Config, client)
	if err != nil {
		return err
	}

	// The client outlives the agent's shutdown, so the last job results
	// and statuses still go out; a client that gives up ends the agent.
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	clientCtx, stopClient := context.WithCancel(context.Background())
	clientErr := make(chan error, 1)
	go func() {
		err := runClient(clientCtx)
		stopAgent()
		clientErr <- err
	}()
	runErr := a.Run(agentCtx)
	stopClient()
	cerr := <-clientErr
	if runErr != nil {
		return runErr
	}
	if cerr != nil && !errors.Is(cerr, context.Canceled) && ctx.Err() == nil {
		return fmt.Errorf("worker connection: %w", cerr)
	}
	return nil
}
