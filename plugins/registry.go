// Package plugins is the registry of the built-in plugins: the ones the
// wisehosting binary serves itself (`wisehosting plugin serve <kind> <name>`)
// for `plugin "<kind>" "<name>"` blocks without a command. Each built-in
// lives in plugins/<kind>/<name> and is written against sdk/ only, exactly
// as a third party's plugin would be.
package plugins

import (
	"cmp"
	"context"
	"slices"

	alertschat "github.com/wisehosting/wisehosting/plugins/alerts/chat"
	alertsemail "github.com/wisehosting/wisehosting/plugins/alerts/email"
	alertslog "github.com/wisehosting/wisehosting/plugins/alerts/log"
	alertswebhook "github.com/wisehosting/wisehosting/plugins/alerts/webhook"
	httpplans "github.com/wisehosting/wisehosting/plugins/plans/http"
	"github.com/wisehosting/wisehosting/plugins/plans/static"
	"github.com/wisehosting/wisehosting/plugins/proxy/caddy"
	"github.com/wisehosting/wisehosting/plugins/proxy/nginx"
	"github.com/wisehosting/wisehosting/plugins/proxy/traefik"
	"github.com/wisehosting/wisehosting/plugins/scheduler/binpack"
	"github.com/wisehosting/wisehosting/plugins/scheduler/leastloaded"
	"github.com/wisehosting/wisehosting/plugins/scheduler/spread"
	"github.com/wisehosting/wisehosting/sdk"
)

// Builtin describes a built-in plugin.
type Builtin struct {
	// Kind is one of the sdk.Kind constants.
	Kind string
	// Name is the plugin's name within its kind.
	Name string
	// Description is the plugin's one-line description (from its Info).
	Description string
}

type key struct{ kind, name string }

// builtins maps (kind, name) to a constructor. It is the one package-level
// registry the house allows; it is never written after initialisation.
var builtins = map[key]func() sdk.Plugin{
	{sdk.KindScheduler, leastloaded.Name}: func() sdk.Plugin { return leastloaded.New() },
	{sdk.KindScheduler, binpack.Name}:     func() sdk.Plugin { return binpack.New() },
	{sdk.KindScheduler, spread.Name}:      func() sdk.Plugin { return spread.New() },
	{sdk.KindPlans, static.Name}:          func() sdk.Plugin { return static.New() },
	{sdk.KindPlans, httpplans.Name}:       func() sdk.Plugin { return httpplans.New() },
	{sdk.KindAlerts, alertslog.Name}:      func() sdk.Plugin { return alertslog.New() },
	{sdk.KindAlerts, alertswebhook.Name}:  func() sdk.Plugin { return alertswebhook.New() },
	{sdk.KindAlerts, alertschat.Name}:     func() sdk.Plugin { return alertschat.New() },
	{sdk.KindAlerts, alertsemail.Name}:    func() sdk.Plugin { return alertsemail.New() },
	{sdk.KindProxy, traefik.Name}:         func() sdk.Plugin { return traefik.New() },
	{sdk.KindProxy, nginx.Name}:           func() sdk.Plugin { return nginx.New() },
	{sdk.KindProxy, caddy.Name}:           func() sdk.Plugin { return caddy.New() },
}

// Lookup returns a fresh, unconfigured instance of the built-in plugin of
// that kind and name, and whether there is one.
func Lookup(kind, name string) (sdk.Plugin, bool) {
	mk, ok := builtins[key{kind, name}]
	if !ok {
		return nil, false
	}
	return mk(), true
}

// List returns every built-in plugin, sorted by kind, then name.
func List() []Builtin {
	out := make([]Builtin, 0, len(builtins))
	for k, mk := range builtins {
		b := Builtin{Kind: k.kind, Name: k.name}
		// Built-ins answer Info from fixed fields; it cannot fail.
		if info, err := mk().Info(context.Background()); err == nil {
			b.Description = info.GetDescription()
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Builtin) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}
