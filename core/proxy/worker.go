package proxy

import (
	"encoding/json"
	"strconv"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/route"
)

// DefaultContainerPort is the port an app's container listens on when its
// PORT variable is unset or does not parse (the worker gives it this PORT).
const DefaultContainerPort = 8080

// ContainerPort is the port an app listens on inside its container: its
// PORT variable if that is a port number, else DefaultContainerPort — the
// rule the worker applies when it starts the container.
func ContainerPort(portEnv string) int {
	if n, err := strconv.Atoi(portEnv); err == nil && n > 0 && n < 65536 {
		return n
	}
	return DefaultContainerPort
}

// The shape of the legacy per-worker Traefik configuration: only the
// emitted fields (seed: traefikDynamicConfig and friends).
type (
	workerConfig struct {
		HTTP workerHTTP `json:"http"`
	}
	workerHTTP struct {
		Routers  map[string]workerRouter  `json:"routers"`
		Services map[string]workerService `json:"services"`
	}
	workerRouter struct {
		Rule    string `json:"rule"`
		Service string `json:"service"`
	}
	workerService struct {
		LoadBalancer workerLB `json:"loadBalancer"`
	}
	workerLB struct {
		Servers []workerServer `json:"servers"`
	}
	workerServer struct {
		URL string `json:"url"`
	}
)

// WorkerConfig renders the legacy per-worker Traefik configuration (GET
// /v1/traefik/config): for each app with verified custom domains, a router
// named after the app matching those domains and a service pointing where
// the worker's own Traefik reaches the app — the container by name on the
// podman network, http://wh-<uuid>:<container port>, or for an app run as
// a plain process, http://127.0.0.1:<port>. Domains that fail hostname
// validation are left out (and an app left with none); equal inputs give
// equal bytes.
func WorkerConfig(rows []store.WorkerRouteRow) []byte {
	cfg := workerConfig{HTTP: workerHTTP{Routers: map[string]workerRouter{}, Services: map[string]workerService{}}}
	for _, r := range rows {
		if !route.ValidName(r.Name) {
			continue
		}
		var hosts []string
		for _, d := range r.Domains {
			if hostname.Valid(d) == nil {
				hosts = append(hosts, d)
			}
		}
		if len(hosts) == 0 {
			continue
		}
		var upstream string
		switch container := "wh-" + r.UUID; {
		case r.Runtime == "podman" && hostname.ValidLabel(container) == nil:
			// A container name resolves on the podman network only: a
			// single label, which route.SplitUpstream rightly refuses for
			// the platform's edge.
			upstream = "http://" + container + ":" + strconv.Itoa(ContainerPort(r.PortEnv))
		case r.Runtime != "podman" && r.Port > 0 && r.Port < 65536:
			upstream = "http://127.0.0.1:" + strconv.Itoa(r.Port)
		default:
			continue
		}
		rule := ""
		for i, h := range hosts {
			if i > 0 {
				rule += " || "
			}
			rule += "Host(`" + h + "`)"
		}
		cfg.HTTP.Routers[r.Name] = workerRouter{Rule: rule, Service: r.Name}
		cfg.HTTP.Services[r.Name] = workerService{LoadBalancer: workerLB{Servers: []workerServer{{URL: upstream}}}}
	}
	b, _ := json.Marshal(cfg) // maps of strings: cannot fail
	return append(b, '\n')
}
