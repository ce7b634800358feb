package leastloaded

import (
	"context"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// configJSON decodes an HCL config body against the plugin's spec the way
// the core does and returns the JSON Configure receives.
func configJSON(t *testing.T, src string) ([]byte, error) {
	t.Helper()
	js, diags := decode.Source(Spec(), []byte(src), "test.hcl", nil)
	if diags.HasErrors() {
		return nil, diags
	}
	return js, nil
}

func TestInfo(t *testing.T) {
	p := New()
	info, err := p.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != sdk.KindScheduler || info.GetName() != Name || info.GetVersion() != Version || info.GetDescription() == "" {
		t.Errorf("info = %v", info)
	}
	if k := sdk.KindOf(p); k != sdk.KindScheduler {
		t.Errorf("KindOf = %q", k)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name    string
		hcl     string
		want    Weights
		wantErr string // substring of the Configure error, or of the HCL diagnostics
	}{
		{name: "empty block gives the defaults", hcl: ``, want: DefaultWeights},
		{name: "empty weights block gives the defaults", hcl: `weights {}`, want: DefaultWeights},
		{name: "partial weights keep the other defaults", hcl: `weights { cpu = 1 }`, want: Weights{CPU: 1, Memory: 0.4, Apps: 0.2}},
		{name: "all weights", hcl: `weights {
			cpu = 0.5
			memory = 0.25
			apps = 0.25
		}`, want: Weights{CPU: 0.5, Memory: 0.25, Apps: 0.25}},
		{name: "apps only", hcl: `weights {
			cpu = 0
			memory = 0
			apps = 1
		}`, want: Weights{Apps: 1}},
		{name: "negative weight", hcl: `weights { memory = -0.1 }`, wantErr: "weights.memory must be at least 0"},
		{name: "all zero", hcl: `weights {
			cpu = 0
			memory = 0
			apps = 0
		}`, wantErr: "at least one of cpu, memory and apps"},
		{name: "wrong type", hcl: `weights { cpu = "lots" }`, wantErr: "number is required"},
		{name: "unknown attribute", hcl: `weight = 1`, wantErr: "Unsupported argument"},
		{name: "unknown weight", hcl: `weights { disk = 1 }`, wantErr: "Unsupported argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New()
			js, err := configJSON(t, tt.hcl)
			if err == nil {
				err = p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js})
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if got := p.Weights(); got != DefaultWeights {
					t.Errorf("a rejected config changed the weights to %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Weights(); got != tt.want {
				t.Errorf("weights = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestConfigureJSON(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    Weights
		wantErr string
	}{
		{name: "no config", json: ``, want: DefaultWeights},
		{name: "null weights", json: `{"weights":null}`, want: DefaultWeights},
		{name: "weights", json: `{"weights":{"cpu":1,"memory":2,"apps":3}}`, want: Weights{CPU: 1, Memory: 2, Apps: 3}},
		{name: "unknown field", json: `{"weights":{"cpu":1},"extra":1}`, wantErr: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New()
			err := p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte(tt.json)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Weights(); got != tt.want {
				t.Errorf("weights = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A second Configure starts from a clean slate: nothing of the first
// config survives.
func TestReconfigure(t *testing.T) {
	p := New()
	ctx := context.Background()
	for _, c := range []struct {
		json string
		want Weights
	}{
		{`{"weights":{"cpu":1,"memory":0,"apps":0}}`, Weights{CPU: 1}},
		{`{}`, DefaultWeights},
	} {
		if err := p.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte(c.json)}); err != nil {
			t.Fatal(err)
		}
		if got := p.Weights(); got != c.want {
			t.Errorf("after %s: weights = %+v, want %+v", c.json, got, c.want)
		}
	}
}
