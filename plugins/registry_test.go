package plugins

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	if len(builtins) == 0 {
		t.Fatal("no built-ins")
	}
	for k := range builtins {
		t.Run(k.kind+"/"+k.name, func(t *testing.T) {
			p, ok := Lookup(k.kind, k.name)
			if !ok {
				t.Fatal("Lookup does not find it")
			}
			info, err := p.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.GetKind() != k.kind || info.GetName() != k.name {
				t.Errorf("Info says %s/%s", info.GetKind(), info.GetName())
			}
			if got := sdk.KindOf(p); got != k.kind {
				t.Errorf("sdk.KindOf = %q", got)
			}
			if !slices.Contains(sdk.Kinds(), k.kind) {
				t.Errorf("unknown kind %q", k.kind)
			}
			if info.GetVersion() == "" || info.GetDescription() == "" || len(info.GetApiVersions()) == 0 {
				t.Errorf("incomplete info: %v", info)
			}
			// The spec converts to hcldec, and the built-in's first good
			// config block (empty for every built-in that works on its
			// defaults) decodes and configures.
			specPB, err := p.ConfigSpec(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decode.Spec(specPB); err != nil {
				t.Fatalf("spec: %v", err)
			}
			js := minimalConfig(t, k.kind+"/"+k.name, specPB)
			if err := p.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js}); err != nil {
				t.Errorf("configure with the first good config (%s): %v", js, err)
			}
			// Lookup returns a fresh instance every time.
			q, _ := Lookup(k.kind, k.name)
			if p == q {
				t.Error("Lookup returned the same instance twice")
			}
		})
	}
}

// minimalConfig decodes the first good config block of built-in key from
// the conformance table.
func minimalConfig(t *testing.T, key string, spec *pluginv1.Spec) []byte {
	t.Helper()
	c, ok := conformance[key]
	if !ok || len(c.good) == 0 {
		t.Fatalf("%s has no good config in the conformance table", key)
	}
	js, diags := decode.Source(spec, []byte(c.good[0]), key+".hcl", nil)
	if diags.HasErrors() {
		t.Fatalf("%s: the first good config: %v", key, diags)
	}
	return js
}

func TestLookupUnknown(t *testing.T) {
	for _, c := range [][2]string{{"scheduler", "nope"}, {"nope", "least-loaded"}, {"proxy", "least-loaded"}, {"", ""}} {
		if p, ok := Lookup(c[0], c[1]); ok || p != nil {
			t.Errorf("Lookup(%q, %q) = %v, %v", c[0], c[1], p, ok)
		}
	}
}

func TestList(t *testing.T) {
	got := List()
	want := []Builtin{
		{Kind: "alerts", Name: "chat"},
		{Kind: "alerts", Name: "email"},
		{Kind: "alerts", Name: "log"},
		{Kind: "alerts", Name: "webhook"},
		{Kind: "plans", Name: "http"},
		{Kind: "plans", Name: "static"},
		{Kind: "proxy", Name: "caddy"},
		{Kind: "proxy", Name: "nginx"},
		{Kind: "proxy", Name: "traefik"},
		{Kind: "scheduler", Name: "binpack"},
		{Kind: "scheduler", Name: "least-loaded"},
		{Kind: "scheduler", Name: "spread"},
	}
	if len(got) != len(want) {
		t.Fatalf("List() = %v", got)
	}
	for i := range want {
		if got[i].Kind != want[i].Kind || got[i].Name != want[i].Name || got[i].Description == "" {
			t.Errorf("List()[%d] = %+v, want %s/%s with a description", i, got[i], want[i].Kind, want[i].Name)
		}
	}
	// Every kind has a built-in.
	for _, k := range sdk.Kinds() {
		if !slices.ContainsFunc(got, func(b Builtin) bool { return b.Kind == k }) {
			t.Errorf("no built-in of kind %s", k)
		}
	}
}

// Configure may run while kind calls are in flight (the host re-configures
// after a restart); under -race this shows the built-ins are safe for it.
func TestConfigureWhileServing(t *testing.T) {
	ctx := context.Background()
	for k := range builtins {
		t.Run(k.kind+"/"+k.name, func(t *testing.T) {
			p, _ := Lookup(k.kind, k.name)
			specPB, err := p.ConfigSpec(ctx)
			if err != nil {
				t.Fatal(err)
			}
			js := minimalConfig(t, k.kind+"/"+k.name, specPB)
			call := func() error {
				switch x := p.(type) {
				case sdk.Scheduler:
					_, err := x.Place(ctx, &pluginv1.PlaceRequest{
						Jobs:    []*pluginv1.PlaceJob{{Id: 1, Runtime: "exec", Cpu: 1, Memory: 1}},
						Workers: []*pluginv1.PlaceWorker{{Id: 1, Runtimes: []string{"exec"}, CapacityCpu: 10, CapacityMemory: 10}},
					})
					return err
				case sdk.Proxy:
					_, err := x.Render(ctx, &pluginv1.RenderRequest{})
					return err
				case sdk.AlertSink:
					_, err := x.Deliver(ctx, &pluginv1.DeliverRequest{})
					return err
				case sdk.PlanSource:
					_, err := x.Plans(ctx)
					return err
				}
				return fmt.Errorf("%T implements no kind", p)
			}
			// Configured once first, as the host does before any call.
			if err := p.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 4)
			for range 2 {
				go func() {
					for range 200 {
						if err := p.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js}); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				go func() {
					for range 200 {
						if err := call(); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
			}
			for range 4 {
				if err := <-done; err != nil {
					t.Error(err)
				}
			}
		})
	}
}
