package pluginhost_test

// The test plugins. TestMain serves one when WH_PLUGINHOST_TEST_PLUGIN
// names it ("kind/name"), so the host starts real subprocesses: the test
// binary re-executed.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/mock"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

const (
	// testPluginEnv names the test plugin a re-executed test binary serves.
	testPluginEnv = "WH_PLUGINHOST_TEST_PLUGIN"
	// testDirEnv is a directory the test plugins write to.
	testDirEnv = "WH_PLUGINHOST_TEST_DIR"
	// testCoreEnv makes the test binary run a host (a "core") and block,
	// for the parent-death test.
	testCoreEnv = "WH_PLUGINHOST_TEST_CORE"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(testPluginEnv); name != "" {
		os.Exit(servePlugin(name))
	}
	if os.Getenv(testCoreEnv) != "" {
		os.Exit(runCore())
	}
	os.Exit(m.Run())
}

// echoConfig is the config of the echo scheduler.
type echoConfig struct {
	Greeting string   `json:"greeting"`
	Zones    []string `json:"zones"`
	Limit    *float64 `json:"limit"`
}

// echoSpec is its schema: greeting required, zones a list with a default.
func echoSpec() *pluginv1.Spec {
	return hclspec.Object(map[string]*pluginv1.Spec{
		"greeting": hclspec.Attr("greeting", "string", true, "echoed in every placement's reason"),
		"zones":    hclspec.Default(hclspec.Attr("zones", "list(string)", false, ""), hclspec.Literal(`["a"]`)),
		"limit":    hclspec.Attr("limit", "number", false, ""),
	})
}

// echoScheduler places every job on the first worker, with the configured
// greeting as the reason, so a test sees that Configure reached it (also
// after a restart).
func echoScheduler() *mock.Scheduler {
	var mu sync.Mutex
	var cfg echoConfig
	log := sdk.Logger()
	return &mock.Scheduler{
		InfoFunc: func(context.Context) (*pluginv1.InfoResponse, error) {
			return &pluginv1.InfoResponse{Kind: sdk.KindScheduler, Name: "echo", Version: "1.2.3",
				Description: "test scheduler", ApiVersions: []string{sdk.APIVersion1}}, nil
		},
		ConfigSpecFunc: func(context.Context) (*pluginv1.Spec, error) { return echoSpec(), nil },
		ConfigureFunc: func(_ context.Context, req *pluginv1.ConfigureRequest) error {
			var c echoConfig
			if err := sdk.DecodeConfig(req.GetConfigJson(), &c); err != nil {
				return err
			}
			if c.Greeting == "reject" {
				return fmt.Errorf("greeting must not be %q", c.Greeting)
			}
			mu.Lock()
			cfg = c
			mu.Unlock()
			log.Info("configured", "greeting", c.Greeting, "instance", req.GetInstance())
			return nil
		},
		PlaceFunc: func(_ context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
			mu.Lock()
			reason := cfg.Greeting + " " + strings.Join(cfg.Zones, ",")
			mu.Unlock()
			resp := &pluginv1.PlaceResponse{}
			for _, j := range req.GetJobs() {
				var w int64
				if len(req.GetWorkers()) > 0 {
					w = req.GetWorkers()[0].GetId()
				}
				resp.Placements = append(resp.Placements, &pluginv1.Placement{JobId: j.GetId(), WorkerId: w, Reason: reason})
			}
			return resp, nil
		},
	}
}

// servePlugin serves the test plugin kind/name and returns the exit code.
func servePlugin(name string) int {
	dir := os.Getenv(testDirEnv)
	switch name {
	case "scheduler/echo":
		sdk.Serve(echoScheduler())
	case "proxy/apply":
		sdk.Serve(&mock.Proxy{ApplyFunc: func(_ context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
			return &pluginv1.ApplyResponse{Applied: true, Message: fmt.Sprintf("generation %d", req.GetGeneration())}, nil
		}})
	case "proxy/plain":
		sdk.Serve(&mock.Proxy{})
	case "alerts/echo":
		sdk.Serve(&mock.AlertSink{DeliverFunc: func(_ context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
			resp := &pluginv1.DeliverResponse{}
			for _, e := range req.GetEvents() {
				r := &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED}
				if e.GetType() == "test.environment" {
					env := os.Environ()
					sort.Strings(env)
					b, _ := json.Marshal(env) // values may hold newlines (PLUGIN_CLIENT_CERT)
					r.Message = string(b)
				}
				resp.Results = append(resp.Results, r)
			}
			return resp, nil
		}})
	case "plans/echo":
		sdk.Serve(&mock.PlanSource{})
	case "scheduler/liar":
		// Info says proxy: sdk.Serve would refuse, so serve through
		// go-plugin directly to see the host refuse.
		p := &mock.Scheduler{InfoFunc: func(context.Context) (*pluginv1.InfoResponse, error) {
			return &pluginv1.InfoResponse{Kind: sdk.KindProxy, Name: "liar", ApiVersions: []string{sdk.APIVersion1}}, nil
		}}
		plugin.Serve(sdk.ServeConfig(p, sdk.KindScheduler))
	case "scheduler/future":
		sdk.Serve(&mock.Scheduler{InfoFunc: func(context.Context) (*pluginv1.InfoResponse, error) {
			return &pluginv1.InfoResponse{Kind: sdk.KindScheduler, Name: "future", ApiVersions: []string{"7", "8"}}, nil
		}})
	case "scheduler/badspec":
		sdk.Serve(&mock.Scheduler{ConfigSpecFunc: func(context.Context) (*pluginv1.Spec, error) {
			return hclspec.Object(map[string]*pluginv1.Spec{"x": hclspec.Attr("x", "strin(g", false, "")}), nil
		}})
	case "scheduler/crashloop":
		// Starts once; every later start dies at once, as a plugin whose
		// dependency vanished would.
		marker := filepath.Join(dir, "crashloop.started")
		if _, err := os.Stat(marker); err == nil {
			fmt.Fprintln(os.Stderr, "crashloop: cannot start again, giving up")
			return 3
		}
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		sdk.Serve(echoScheduler())
	case "scheduler/spawner":
		// Spawns a grandchild that holds the plugin's stderr, which a
		// plain kill of the plugin would leave behind.
		cmd := exec.Command("sleep", "300")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.WriteFile(filepath.Join(dir, "grandchild.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		sdk.Serve(echoScheduler())
	default:
		fmt.Fprintf(os.Stderr, "no test plugin %q\n", name)
		return 1
	}
	return 0
}

// runCore starts a host with one plugin, prints the plugin's pid, and
// blocks until killed.
func runCore() int {
	dir := os.Getenv(testDirEnv)
	cfg, diags := config.Parse([]byte(baseConfig+`
scheduler { placement = "echo" }
plugin "scheduler" "echo" {
  config { greeting = "hi" }
}
`), filepath.Join(dir, "wisehosting.hcl"), config.Options{LookupEnv: noEnv})
	if diags.HasErrors() {
		fmt.Println("config:", diags)
		return 1
	}
	h := pluginhost.New(pluginhost.Options{BuiltinCommand: testCommand(dir)})
	if diags := h.Start(context.Background(), cfg); diags.HasErrors() {
		fmt.Println("start:", diags)
		return 1
	}
	fmt.Printf("pid=%d\n", h.Status()[0].PID)
	select {}
}

// baseConfig is the part of every test configuration that is not plugins.
const baseConfig = `platform {
  domain = "apps.test"
}
server {
  secret = "0123456789abcdef0123456789"
}
`

func noEnv(string) (string, bool) { return "", false }

// testCommand serves built-ins by re-executing the test binary.
func testCommand(dir string) func(kind, name string) (pluginhost.Command, error) {
	exe, err := os.Executable()
	return func(kind, name string) (pluginhost.Command, error) {
		if err != nil {
			return pluginhost.Command{}, err
		}
		return pluginhost.Command{Path: exe, Env: []string{
			testPluginEnv + "=" + kind + "/" + name,
			testDirEnv + "=" + dir,
		}}, nil
	}
}

// readLine reads the first line of r that starts with prefix, within d.
func readLine(r *bufio.Reader, prefix string, d time.Duration) (string, error) {
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				ch <- res{err: err}
				return
			}
			if strings.HasPrefix(line, prefix) {
				ch <- res{line: strings.TrimSpace(strings.TrimPrefix(line, prefix))}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-time.After(d):
		return "", fmt.Errorf("no %q line within %s", prefix, d)
	}
}

// marshal is json.Marshal for test data.
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
