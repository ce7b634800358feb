package plugins

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/mail/mailtest"
	"github.com/wisehosting/wisehosting/sdk/sdktest"
)

// TestMain lets the test binary serve any built-in when sdktest re-executes
// it, so built-ins are checked through a real subprocess without a prior
// go build — exactly as a third party's plugin is.
func TestMain(m *testing.M) {
	factories := map[string]func() sdk.Plugin{}
	for _, b := range List() {
		b := b
		factories[b.Kind+"/"+b.Name] = func() sdk.Plugin {
			p, _ := Lookup(b.Kind, b.Name)
			return p
		}
	}
	sdktest.ServeNamedIfChild(factories)
	// plans/http's first good config needs a live catalogue: the kit and
	// TestConfigureWhileServing call Plans with it. The plugin subprocess
	// fetches it from this (the parent) process.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, plansHTTPCatalogue)
	}))
	c := conformance["plans/http"]
	c.good = append([]string{fmt.Sprintf("url = %q", srv.URL+"/plans.json")}, c.good...)
	conformance["plans/http"] = c
	// alerts/email's first good config sends the kit's sample events to a
	// live SMTP server on loopback (STARTTLS, its certificate in a CA file
	// the plugin subprocess reads).
	mailSrv, err := mailtest.New(mailtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the SMTP test server:", err)
		os.Exit(1)
	}
	caDir, err := os.MkdirTemp("", "wisehosting-plugins-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caFile := filepath.Join(caDir, "smtp-ca.pem")
	if err := os.WriteFile(caFile, mailSrv.CertPEM(), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c = conformance["alerts/email"]
	c.good = append([]string{fmt.Sprintf("host = %q\nport = %d\nallow_private = true\nca_file = %q\n"+
		"from = \"WiseHosting <alerts@example.com>\"\nto = [\"ops@example.com\"]\ntimeout = \"5s\"",
		mailSrv.Host(), mailSrv.Port(), caFile)}, c.good...)
	conformance["alerts/email"] = c
	code := m.Run()
	srv.Close()
	mailSrv.Close()
	os.RemoveAll(caDir)
	os.Exit(code)
}

// plansHTTPCatalogue is the document the plans/http conformance server
// answers: the seed's free/pro/business table.
const plansHTTPCatalogue = `{"default_plan": "free", "plans": [
  {"id": "free",     "name": "Free",     "max_apps": 1, "cpu": 1, "memory": "512MiB", "disk": "1GiB",  "bandwidth": "10mbit"},
  {"id": "pro",      "name": "Pro",      "max_apps": 5, "cpu": 2, "memory": "2GiB",   "disk": "10GiB", "bandwidth": "100mbit"},
  {"id": "business", "name": "Business", "max_apps": 0, "cpu": 4, "memory": "8GiB",   "disk": "50GiB"}]}`

// The good and bad config blocks each built-in must accept and reject.
var conformance = map[string]struct{ good, bad []string }{
	"scheduler/least-loaded": {
		good: []string{``, "weights {\n  cpu = 1\n  memory = 0\n  apps = 0\n}"},
		bad:  []string{`weights = 1`, "weights {\n  cpu = -1\n}", "weights {\n  cpu = 0\n  memory = 0\n  apps = 0\n}", `unknown = true`},
	},
	"scheduler/binpack": {
		good: []string{``, "weights {\n  cpu = 0\n  memory = 1\n}"},
		bad:  []string{`weights = 1`, "weights {\n  memory = -1\n}", "weights {\n  cpu = 0\n  memory = 0\n}", "weights {\n  apps = 1\n}"},
	},
	"scheduler/spread": {
		good: []string{``, "weights {\n  cpu = 0\n  memory = 0\n  apps = 1\n}"},
		bad:  []string{`weights = 1`, "weights {\n  apps = -1\n}", "weights {\n  cpu = 0\n  memory = 0\n  apps = 0\n}", `unknown = true`},
	},
	"plans/static": {
		good: []string{``, "default_plan = \"pro\"\nplan \"pro\" {\n  max_apps = 5\n  cpu = 2\n  memory = \"2GiB\"\n  disk = \"10GiB\"\n}"},
		bad:  []string{`default_plan = "missing"`, "plan \"pro\" {\n  max_apps = 5\n  cpu = 2\n  memory = \"lots\"\n  disk = \"1GiB\"\n}", "plan \"Bad Id\" {\n  max_apps = 1\n  cpu = 1\n  memory = \"1GiB\"\n  disk = \"1GiB\"\n}"},
	},
	"alerts/webhook": {
		good: []string{
			"url = \"http://127.0.0.1:1/hook\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"\nallow_private = true\ntimeout = \"2s\"",
			"url = \"https://hooks.example.com/wisehosting\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"",
			"url = \"https://hooks.example.com/x?token=abc\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"\nsecrets_previous = [\"whsec_AgICAgICAgICAgICAgICAgICAgICAgIC\"]\ntimeout = \"30s\"\nmax_concurrency = 2\nheaders = { Authorization = \"Bearer x\" }",
		},
		bad: []string{``, `url = "https://hooks.example.com/"`,
			"url = \"ftp://hooks.example.com/\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"",
			"url = \"http://127.0.0.1:8080/\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"",
			"url = \"http://169.254.169.254/\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"",
			"url = \"https://hooks.example.com/\"\nsecret = \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"",
			"url = \"https://hooks.example.com/\"\nsecret = \"whsec_c2hvcnQ=\"",
			"url = \"https://hooks.example.com/\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"\nheaders = { \"webhook-id\" = \"x\" }",
			"url = \"https://hooks.example.com/\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"\nmax_concurrency = 0",
			"url = \"https://hooks.example.com/\"\nsecret = \"whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"\ntimeout = \"forever\""},
	},
	// Every good chat config points at loopback with allow_private; the
	// first at a closed port, so Deliver gets RETRY without any network.
	"alerts/chat": {
		good: []string{
			"url = \"discord://tok@1\"\nbase_url = \"http://127.0.0.1:1\"\nallow_private = true\ntimeout = \"2s\"",
			"url = \"slack://hook:T01ABCDEF-B02GHIJKL-ZqXXXXXXXXXXXXXXXXXXXXXX@webhook\"\nbase_url = \"http://127.0.0.1:1/relay\"\nallow_private = true\nmax_concurrency = 2",
			"url = \"ntfy://127.0.0.1:1/alerts?scheme=http&priority=high\"\nallow_private = true\ntimeout = \"30s\"",
			"url = \"telegram://123456789:AAH-token@telegram?chats=@ops,-100123\"\nbase_url = \"http://[::1]:1\"\nallow_private = true",
			"url = \"gotify://127.0.0.1:1/Atoken0123456789?disabletls=yes\"\nallow_private = true",
			"url = \"generic+http://127.0.0.1:1/hook?team=ops&@X-Api-Key=k\"\nallow_private = true",
		},
		bad: []string{``, `url = "mailto://ops@example.com"`,
			"url = \"discord://tok@1\"\nbase_url = \"http://127.0.0.1:1\"",
			`url = "ntfy://10.0.0.1/alerts"`, `url = "generic+http://169.254.169.254/latest"`,
			`url = "telegram://123:AAH@telegram"`, `url = "slack://xoxb:1-2-3@C01"`,
			"url = \"discord://tok@1\"\ntimeout = \"forever\"", "url = \"discord://tok@1\"\nmax_concurrency = 0",
			"url = \"discord://tok@1\"\nbase_url = \"ftp://relay.example.com\"", `url = ["discord://tok@1"]`,
			"url = \"discord://tok@1\"\nsecret = \"x\""},
	},
	// The live url = "…" good config is put first by TestMain.
	"plans/http": {
		good: []string{`url = "https://plans.example.com/wisehosting/plans.json"`,
			"url = \"http://10.0.0.5:8080/plans?tenant=a\"\nrefresh = \"30s\"\ntimeout = \"2s\"\nmax_size = \"64KiB\"\nheaders = { Authorization = \"Bearer x\", \"X-Tenant\" = \"a\" }"},
		bad: []string{``, `url = "ftp://plans.example.com/plans.json"`, `url = "https://user:pass@plans.example.com/plans.json"`,
			"url = \"https://plans.example.com/\"\nrefresh = \"1s\"", "url = \"https://plans.example.com/\"\ntimeout = \"forever\"",
			"url = \"https://plans.example.com/\"\nmax_size = \"lots\"", "url = \"https://plans.example.com/\"\nheaders = { Host = \"x\" }",
			"url = \"https://plans.example.com/\"\nheaders = [\"x\"]", `url = ["https://plans.example.com/"]`},
	},
	// The live config with a test SMTP server is put first by TestMain; the
	// others never connect.
	"alerts/email": {
		good: []string{
			"host = \"127.0.0.1\"\nport = 1\nallow_private = true\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\ntimeout = \"2s\"",
			"host = \"smtp.example.com\"\nfrom = \"WiseHosting <alerts@example.com>\"\nto = [\"ops@example.com\", \"Jane <jane@example.com>\"]",
			"host = \"smtp.example.com\"\nport = 465\ntls = true\nusername = \"alerts@example.com\"\npassword = \"hunter2\"\n" +
				"from = \"alerts@example.com\"\nto = [\"ops@example.com\"]\ntimeout = \"10s\"\nmax_concurrency = 4\n" +
				"subject_prefix = \"[Prod]\"\nserver_name = \"mail.example.com\"",
		},
		bad: []string{``,
			"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"",
			"host = \"smtp.example.com\"\nfrom = \"not an address\"\nto = [\"ops@example.com\"]",
			"host = \"127.0.0.1\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]",
			"host = \"169.254.169.254\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]",
			"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\nmax_concurrency = 0",
			"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\ntimeout = \"forever\"",
			"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\nstarttls = false\nusername = \"u\"\npassword = \"p\"",
			"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\nca_file = \"ca.pem\"",
			"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = \"ops@example.com\""},
	},
	"alerts/log": {
		good: []string{``, `level = "debug"`},
		bad:  []string{`level = "loud"`, `level = 3`, `url = "x"`},
	},
	"proxy/caddy": {
		good: []string{``, "tls = \"internal\"\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.1:8443\"",
			"admin = \"http://10.0.0.5:2019\"\nemail = \"ops@example.com\"\non_demand_ask = \"http://127.0.0.1:8443/v1/proxy/tls/ask\"",
			"tls = \"off\"\nhttp_listen = \":8080\""},
		bad: []string{`tls = "on"`, `admin = "http://203.0.113.7:2019"`, `admin = "http://127.0.0.1:2019/config"`, `http_listen = "80"`,
			"tls = \"off\"\non_demand_ask = \"http://127.0.0.1:8443/ask\"", `email = "not an email"`, `admin = ["http://127.0.0.1:2019"]`},
	},
	"proxy/nginx": {
		good: []string{``, `listen = ["80", "[::]:80", "443 ssl http2"]`, "nginx = \"/usr/sbin/nginx\"\nprefix = \"/var/lib/edge\"\nconf = \"conf/nginx.conf\"",
			"server_names_hash_bucket_size = 128\nserver_names_hash_max_size = 4096"},
		bad: []string{`dir = "relative.d"`, `listen = ["80; include /etc/passwd"]`, `listen = ["80 default_server"]`, `reload_command = ["./reload.sh"]`,
			`timeout = "1h"`, `server_names_hash_bucket_size = 100`, `listen = "80"`},
	},
	"proxy/traefik": {
		good: []string{``, "entry_points = [\"websecure\"]\ncert_resolver = \"\"", "http = \"serve\"\nhttp_entry_points = [\"web\", \"alt\"]"},
		bad:  []string{`entry_points = "web"`, `cert_resolver = ["x"]`, `tls = true`, `http = "upgrade"`, `http_entry_points = []`},
	},
}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts plugin subprocesses")
	}
	for _, b := range List() {
		key := b.Kind + "/" + b.Name
		c, ok := conformance[key]
		if !ok {
			t.Errorf("built-in %s has no conformance configs: add it to the table", key)
			continue
		}
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			sdktest.Run(t, sdktest.Options{
				Command:     sdktest.SelfCommandNamed(key),
				Kind:        b.Kind,
				GoodConfigs: c.good,
				BadConfigs:  c.bad,
			})
		})
	}
}
