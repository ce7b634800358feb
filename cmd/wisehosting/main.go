// Command wisehosting is the one binary of the WiseHosting control plane:
// the core daemon, its operator commands, and (in later releases) the
// reference worker agent and the benchmark harness.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `wisehosting — self-hosted PaaS control plane

Usage:
  wisehosting serve    [-config FILE]            run the core daemon
  wisehosting validate [-plugins=false] [FILE]   check a config file (and each plugin's config
                                                 block), exit non-zero on errors
  wisehosting plugins  list [-config FILE]       start the declared plugins, show version, health
  wisehosting plugins  list -builtin             list the built-in plugins
  wisehosting migrate  [up|status] [-config FILE] apply or show database migrations
  wisehosting worker   add|rotate-key|list ...    manage worker API keys
  wisehosting worker   run -core URL ...          run the reference worker agent
                                                 (key in $WISEHOSTING_WORKER_KEY)
  wisehosting bench    [-sections a,b] [-quick]   run the benchmarks and print one table
  wisehosting bench    loadgen -core URL -keys F  simulate a fleet of workers
  wisehosting user     add|list ...               manage users and mint their API tokens
                                                 (operator, direct database access)
  wisehosting version                            print the version

Your apps, with an API token ('wisehosting login -h', 'wisehosting apps help'):
  wisehosting login    [-core URL]               check an API token (wht_…) and store it
  wisehosting logout                             forget the stored token
  wisehosting apps     list|info|create|deploy|deployments|logs|env|domains|
                       start|stop|restart|delete ...

The config file defaults to $WISEHOSTING_CONFIG or ./wisehosting.hcl.
`

// errUsage marks errors that should print usage and exit 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := notifyOnce(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// notifyOnce is signal.NotifyContext for one signal only: the first of sigs
// cancels the context (an orderly shutdown), and from then on sigs have
// their default effect again, so a second Ctrl-C kills a shutdown that
// hangs. The default handling is back before the context is done.
func notifyOnce(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			signal.Stop(ch)
			cancel()
		})
	}
	go func() {
		select {
		case <-ch:
		case <-ctx.Done():
		}
		stop()
	}()
	return ctx, stop
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "validate":
		err = cmdValidate(ctx, args[1:], stdout, stderr)
	case "plugins":
		err = cmdPlugins(ctx, args[1:], stdout, stderr)
	case "plugin":
		// Internal: how the core serves a built-in plugin.
		err = cmdPlugin(args[1:], stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout, stderr)
	case "worker":
		err = workerCommand(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "user":
		err = cmdUser(ctx, args[1:], stdout, stderr)
	case "login", "logout", "apps":
		err = newCLI(stdout, stderr).command(ctx, args)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "wisehosting", versionString())
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "wisehosting: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return exitCode(err, stderr)
}

// exitCode reports a command's error on stderr and returns the exit code:
// 0, 2 for a usage error, 1 for any other failure.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		if !errors.Is(err, flag.ErrHelp) && err.Error() != errUsage.Error() {
			fmt.Fprintln(stderr, "wisehosting:", err)
		}
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintln(stderr, "wisehosting:", err)
		return 1
	}
}

// errReported means the command already printed its diagnostics.
var errReported = errors.New("reported")

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		v += " (" + bi.GoVersion + ")"
	}
	return v
}

// defaultConfig is the config path when none is given.
func defaultConfig() string {
	if p := os.Getenv("WISEHOSTING_CONFIG"); p != "" {
		return p
	}
	return "wisehosting.hcl"
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
