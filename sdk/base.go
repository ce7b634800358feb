package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Base implements Plugin for plugins whose info and spec are fixed: embed it
// and set its fields. Configure checks the API version, decodes the JSON
// config into a fresh value of Config's type (Config points at the plugin's
// config struct; unknown fields are rejected), swaps it in, and runs
// Validate; a rejected config leaves the previous one in force. Configure
// calls are serialised, so Validate may read the config struct freely.
type Base struct {
	// Kind is one of the Kind constants.
	Kind string
	// Name and Version identify the plugin; Description is one line.
	Name, Version, Description string
	// APIVersions the plugin implements; default [APIVersion1].
	APIVersions []string
	// Capabilities lists optional features (e.g. CapabilityProxyApply).
	Capabilities []string
	// Spec is the config block's schema; nil means no configuration.
	Spec *pluginv1.Spec
	// Config, when set, is a pointer Configure unmarshals the config into.
	Config any
	// Validate, when set, checks the decoded config after unmarshalling.
	Validate func() error

	configMu   sync.Mutex // serialises Configure
	mu         sync.RWMutex
	apiVersion string
	instance   string
}

// Info implements Plugin.
func (b *Base) Info(context.Context) (*pluginv1.InfoResponse, error) {
	return &pluginv1.InfoResponse{
		Kind: b.Kind, Name: b.Name, Version: b.Version, Description: b.Description,
		ApiVersions: b.apiVersions(), Capabilities: b.Capabilities,
	}, nil
}

func (b *Base) apiVersions() []string {
	if len(b.APIVersions) == 0 {
		return []string{APIVersion1}
	}
	return b.APIVersions
}

// ConfigSpec implements Plugin.
func (b *Base) ConfigSpec(context.Context) (*pluginv1.Spec, error) { return b.Spec, nil }

// Configure implements Plugin.
func (b *Base) Configure(_ context.Context, req *pluginv1.ConfigureRequest) error {
	b.configMu.Lock()
	defer b.configMu.Unlock()
	if !slices.Contains(b.apiVersions(), req.GetApiVersion()) {
		return fmt.Errorf("API version %q is not one this plugin implements (%v)", req.GetApiVersion(), b.apiVersions())
	}
	if b.Config != nil {
		raw := req.GetConfigJson()
		if len(raw) == 0 {
			raw = []byte("{}")
		}
		restore, err := b.replaceConfig(raw)
		if err != nil {
			return err
		}
		if b.Validate != nil {
			if err := b.Validate(); err != nil {
				restore()
				return err
			}
		}
	} else if b.Validate != nil {
		if err := b.Validate(); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.apiVersion, b.instance = req.GetApiVersion(), req.GetInstance()
	b.mu.Unlock()
	return nil
}

// replaceConfig decodes raw into a fresh value of *Config's type and swaps
// it in, so nothing of a previous configuration lingers (a map entry, a
// field the new config omits). It returns a func that puts the previous
// value back, for when validation rejects the new one.
func (b *Base) replaceConfig(raw []byte) (restore func(), err error) {
	rv := reflect.ValueOf(b.Config)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, fmt.Errorf("sdk.Base.Config must be a non-nil pointer, not %T", b.Config)
	}
	fresh := reflect.New(rv.Elem().Type())
	if err := DecodeConfig(raw, fresh.Interface()); err != nil {
		return nil, err
	}
	old := reflect.New(rv.Elem().Type())
	old.Elem().Set(rv.Elem())
	rv.Elem().Set(fresh.Elem())
	return func() { rv.Elem().Set(old.Elem()) }, nil
}

// APIVersion returns the API version negotiated at Configure.
func (b *Base) APIVersion() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.apiVersion
}

// Instance returns the name of the plugin block (plugin "<kind>" "<instance>").
func (b *Base) Instance() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.instance
}

// DecodeConfig unmarshals a config JSON object into v, rejecting unknown
// fields (the spec and the struct must agree) and trailing data.
func DecodeConfig(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding config: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("decoding config: trailing data after the JSON object")
	}
	return nil
}
