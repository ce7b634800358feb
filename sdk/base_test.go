package sdk

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

type testConfig struct {
	Plans map[string]int `json:"plans"`
	Level string         `json:"level"`
}

func TestBaseConfigureReplacesAndRestores(t *testing.T) {
	var cfg testConfig
	reject := false
	b := &Base{Kind: KindPlans, Name: "t", Config: &cfg, Validate: func() error {
		if reject {
			return errors.New("nope")
		}
		return nil
	}}
	ctx := context.Background()
	conf := func(js string) error {
		return b.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: APIVersion1, ConfigJson: []byte(js), Instance: "i"})
	}
	if err := conf(`{"plans":{"a":1,"b":2},"level":"info"}`); err != nil {
		t.Fatal(err)
	}
	// A second config replaces the first entirely: no stale map entry, no
	// leftover field.
	if err := conf(`{"plans":{"c":3}}`); err != nil {
		t.Fatal(err)
	}
	if want := (testConfig{Plans: map[string]int{"c": 3}}); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("after reconfigure: %+v, want %+v", cfg, want)
	}
	// A rejected config leaves the previous one in force.
	reject = true
	if err := conf(`{"plans":{"d":4},"level":"debug"}`); err == nil {
		t.Fatal("rejected config accepted")
	}
	if want := (testConfig{Plans: map[string]int{"c": 3}}); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("after a rejected config: %+v, want %+v", cfg, want)
	}
	// A config that does not decode changes nothing either.
	reject = false
	if err := conf(`{"plans":{"d":"x"}}`); err == nil {
		t.Fatal("undecodable config accepted")
	}
	if err := conf(`{"unknown":1}`); err == nil {
		t.Fatal("unknown field accepted")
	}
	if cfg.Plans["c"] != 3 {
		t.Fatalf("after undecodable configs: %+v", cfg)
	}
	if err := b.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: "9"}); err == nil {
		t.Fatal("unknown API version accepted")
	}
	if b.APIVersion() != APIVersion1 || b.Instance() != "i" {
		t.Fatalf("APIVersion %q Instance %q", b.APIVersion(), b.Instance())
	}
}

func TestKindOf(t *testing.T) {
	type both struct {
		Base
		schedulerOnly
		plansOnly
	}
	if k := KindOf(&struct {
		Base
		schedulerOnly
	}{}); k != KindScheduler {
		t.Fatalf("KindOf(scheduler) = %q", k)
	}
	if k := KindOf(&both{}); k != "" {
		t.Fatalf("a value implementing two kinds: KindOf = %q, want \"\"", k)
	}
	if k := KindOf(&Base{}); k != "" {
		t.Fatalf("a value implementing no kind: KindOf = %q", k)
	}
}

type schedulerOnly struct{}

func (schedulerOnly) Place(context.Context, *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	return nil, nil
}

type plansOnly struct{}

func (plansOnly) Plans(context.Context) (*pluginv1.PlansResponse, error) { return nil, nil }
