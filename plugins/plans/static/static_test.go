package static

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// oneLine lets the tables write a block on one line, as in the docs'
// shorthand: HCL allows a single attribute in a one-line block, so attributes
// separated by two spaces are put on lines of their own.
func oneLine(src string) string {
	for _, r := range []struct{ re, with string }{
		{`[ \t]+\{`, " {"}, {`\{[ \t]*`, "{\n"}, {`[ \t]*\}`, "\n}"}, {`  +`, "\n"},
	} {
		src = regexp.MustCompile(r.re).ReplaceAllString(src, r.with)
	}
	return src
}

// configure decodes src against the plugin's spec the way the core does and
// configures p with the result.
func configure(t *testing.T, p *Plugin, src string) error {
	t.Helper()
	src = oneLine(src)
	js, diags := decode.Source(Spec(), []byte(src), "test.hcl", nil)
	if diags.HasErrors() {
		return diags
	}
	return p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js})
}

func TestInfo(t *testing.T) {
	p := New()
	info, err := p.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != sdk.KindPlans || info.GetName() != Name || info.GetVersion() != Version || info.GetDescription() == "" {
		t.Errorf("info = %v", info)
	}
	if k := sdk.KindOf(p); k != sdk.KindPlans {
		t.Errorf("KindOf = %q", k)
	}
}

func TestPlans(t *testing.T) {
	seedTable := plans.Default()
	tests := []struct {
		name string
		hcl  string
		want *pluginv1.PlansResponse
	}{
		{name: "no config: the default catalogue", hcl: ``, want: seedTable},
		{
			name: "default catalogue with another default plan",
			hcl:  `default_plan = "pro"`,
			want: func() *pluginv1.PlansResponse { c := plans.Default(); c.DefaultPlan = "pro"; return c }(),
		},
		{
			name: "the seed's table written out gives the same catalogue",
			hcl: `
				plan "free"     { name = "Free"      max_apps = 1  cpu = 1  memory = "512MiB"  disk = "1GiB"   bandwidth = "10mbit" }
				plan "pro"      { name = "Pro"       max_apps = 5  cpu = 2  memory = "2GiB"    disk = "10GiB"  bandwidth = "100mbit" }
				plan "business" { name = "Business"  max_apps = 0  cpu = 4  memory = "8GiB"    disk = "50GiB" }
			`,
			want: seedTable,
		},
		{
			name: "fractional cpu, defaults for name and bandwidth, smallest first",
			hcl: `
				default_plan = "tiny"
				plan "big"  { max_apps = 0  cpu = 8      memory = "16GiB"   disk = "100GiB"  bandwidth = "1gbit" }
				plan "tiny" { max_apps = 1  cpu = 0.25   memory = "256MiB"  disk = "500MB" }
				plan "mid"  { max_apps = 3  cpu = 1.5    memory = "1.5GiB"  disk = 2147483648  bandwidth = "unlimited" }
				plan "mid2" { max_apps = 3  cpu = 1.5    memory = "1.5GiB"  disk = "1GiB"  bandwidth = "0" }
			`,
			want: &pluginv1.PlansResponse{DefaultPlan: "tiny", Plans: []*pluginv1.Plan{
				{Id: "tiny", Name: "tiny", MaxApps: 1, Cpu: 250, Memory: 256 * mib, Disk: 500_000_000},
				{Id: "mid2", Name: "mid2", MaxApps: 3, Cpu: 1500, Memory: 1536 * mib, Disk: gib},
				{Id: "mid", Name: "mid", MaxApps: 3, Cpu: 1500, Memory: 1536 * mib, Disk: 2 * gib},
				{Id: "big", Name: "big", MaxApps: 0, Cpu: 8000, Memory: 16 * gib, Disk: 100 * gib, Bandwidth: 1_000_000_000},
			}},
		},
		{
			name: "ids with digits, underscores and dashes",
			hcl:  `plan "free" {` + "\n" + `max_apps = 1` + "\n" + `cpu = 0.001` + "\n" + `memory = "1B"` + "\n" + `disk = "1B"` + "\n" + "}\n" + `plan "0_team-x" { name = "Team X ✓"  max_apps = 2  cpu = 3  memory = "3GiB"  disk = "3GiB" }`,
			want: &pluginv1.PlansResponse{DefaultPlan: "free", Plans: []*pluginv1.Plan{
				{Id: "free", Name: "free", MaxApps: 1, Cpu: 1, Memory: 1, Disk: 1},
				{Id: "0_team-x", Name: "Team X ✓", MaxApps: 2, Cpu: 3000, Memory: 3 * gib, Disk: 3 * gib},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New()
			if err := configure(t, p, tt.hcl); err != nil {
				t.Fatal(err)
			}
			got, err := p.Plans(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("plans =\n%v\nwant\n%v", got, tt.want)
			}
			if got.GetRefreshAfterMs() != 0 {
				t.Errorf("refresh_after_ms = %d", got.GetRefreshAfterMs())
			}
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	const ok = `max_apps = 1  cpu = 1  memory = "1GiB"  disk = "1GiB"`
	tests := []struct {
		name string
		hcl  string
		want []string // substrings of the error
	}{
		{name: "bad id: uppercase", hcl: `plan "Free" {` + ok + `}`, want: []string{`plan "Free": the id must be`}},
		{name: "bad id: leading dash", hcl: `plan "-x" {` + ok + `}`, want: []string{`plan "-x": the id must be`}},
		{name: "bad id: too long", hcl: `plan "` + strings.Repeat("a", 65) + `" {` + ok + `}`, want: []string{"the id must be 1 to 64"}},
		{name: "bad id: space", hcl: `plan "a b" {` + ok + `}`, want: []string{`plan "a b"`}},
		{name: "default plan missing", hcl: `plan "basic" {` + ok + `}`, want: []string{`default_plan "free" is not one of the declared plans (basic)`}},
		{name: "default plan not in default catalogue", hcl: `default_plan = "gold"`, want: []string{`default_plan "gold" is not a plan of the default catalogue (free, pro, business)`}},
		{name: "bad memory unit", hcl: `plan "free" { max_apps = 1  cpu = 1  memory = "2GB2"  disk = "1GiB" }`,
			want: []string{`plan "free": memory: invalid size "2GB2"`}},
		{name: "bad disk unit", hcl: `plan "free" { max_apps = 1  cpu = 1  memory = "1GiB"  disk = "10 gigs" }`,
			want: []string{`plan "free": disk: invalid size "10 gigs": unknown unit "gigs"`}},
		{name: "bad bandwidth", hcl: `plan "free" { ` + ok + `  bandwidth = "10MB/s" }`,
			want: []string{`plan "free": bandwidth: invalid bandwidth "10MB/s"`}},
		{name: "zero memory", hcl: `plan "free" { max_apps = 1  cpu = 1  memory = "0"  disk = "1GiB" }`, want: []string{`plan "free": memory: must be above 0`}},
		{name: "zero disk", hcl: `plan "free" { max_apps = 1  cpu = 1  memory = "1GiB"  disk = "0GiB" }`, want: []string{`plan "free": disk: must be above 0`}},
		{name: "negative memory", hcl: `plan "free" { max_apps = 1  cpu = 1  memory = "-1GiB"  disk = "1GiB" }`, want: []string{`memory: invalid size "-1GiB": negative`}},
		{name: "zero cpu", hcl: `plan "free" { max_apps = 1  cpu = 0  memory = "1GiB"  disk = "1GiB" }`, want: []string{`plan "free": cpu: must be above 0`}},
		{name: "negative cpu", hcl: `plan "free" { max_apps = 1  cpu = -2  memory = "1GiB"  disk = "1GiB" }`, want: []string{`cpu: must be above 0`}},
		{name: "sub-millicore cpu", hcl: `plan "free" { max_apps = 1  cpu = 0.0005  memory = "1GiB"  disk = "1GiB" }`, want: []string{`cpu: 0.0005 cores is not a whole number of millicores`}},
		{name: "fractional max_apps", hcl: `plan "free" { max_apps = 1.5  cpu = 1  memory = "1GiB"  disk = "1GiB" }`, want: []string{`max_apps: must be a whole number`}},
		{name: "negative max_apps", hcl: `plan "free" { max_apps = -1  cpu = 1  memory = "1GiB"  disk = "1GiB" }`, want: []string{`max_apps: must be between 0`}},
		{name: "control character in name", hcl: `plan "free" { ` + ok + `  name = "a\nb" }`, want: []string{`plan "free": name: control characters`}},
		{name: "every problem is reported", hcl: `
			plan "free" { max_apps = 1  cpu = 0  memory = "x"  disk = "1GiB" }
			plan "pro"  { max_apps = 1  cpu = 1  memory = "1GiB"  disk = "1TB2" }`,
			want: []string{`plan "free": cpu`, `plan "free": memory`, `plan "pro": disk`}},
		{name: "missing required attribute", hcl: `plan "free" { max_apps = 1  cpu = 1  memory = "1GiB" }`, want: []string{`Missing required argument`, `"disk" is required`}},
		{name: "wrong type", hcl: `plan "free" { max_apps = "many"  cpu = 1  memory = "1GiB"  disk = "1GiB" }`, want: []string{`a number is required`}},
		{name: "unknown attribute", hcl: `plan "free" { ` + ok + `  gpu = 1 }`, want: []string{`Unsupported argument`}},
		{name: "two labels", hcl: `plan "free" "x" { ` + ok + ` }`, want: []string{`Extraneous label`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New()
			err := configure(t, p, tt.hcl)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// A rejected config leaves the previous catalogue in force.
			got, _ := p.Plans(context.Background())
			if !proto.Equal(got, plans.Default()) {
				t.Errorf("catalogue changed after a rejected config: %v", got)
			}
		})
	}
}

func TestConfigureJSON(t *testing.T) {
	tests := []struct {
		name, json, wantErr string
		wantPlans           int
	}{
		{name: "empty", json: ``, wantPlans: 3},
		{name: "null plans", json: `{"plan":null,"default_plan":""}`, wantPlans: 3},
		{name: "one plan", json: `{"plan":{"free":{"max_apps":1,"cpu":1,"memory":"1GiB","disk":"1GiB"}}}`, wantPlans: 1},
		{name: "unknown field", json: `{"plans":{}}`, wantErr: "unknown field"},
		{name: "missing sizes", json: `{"plan":{"free":{"max_apps":1,"cpu":1}}}`, wantErr: `plan "free": memory: invalid size ""`},
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
			got, _ := p.Plans(context.Background())
			if len(got.GetPlans()) != tt.wantPlans {
				t.Errorf("%d plans, want %d", len(got.GetPlans()), tt.wantPlans)
			}
		})
	}
}

// Reconfiguring starts from nothing: plans of the previous config do not
// linger (JSON decoding into a used map would merge them).
func TestReconfigure(t *testing.T) {
	p := New()
	ctx := context.Background()
	first := `{"plan":{"free":{"max_apps":1,"cpu":1,"memory":"1GiB","disk":"1GiB"},"gold":{"max_apps":1,"cpu":1,"memory":"1GiB","disk":"1GiB"}}}`
	second := `{"plan":{"free":{"max_apps":2,"cpu":1,"memory":"1GiB","disk":"1GiB"}}}`
	for _, c := range []string{first, second} {
		if err := p.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte(c)}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := p.Plans(ctx)
	if len(got.GetPlans()) != 1 || got.GetPlans()[0].GetMaxApps() != 2 {
		t.Errorf("plans after reconfigure = %v", got.GetPlans())
	}
}

// Plans hands out copies: a caller changing one does not change the next.
func TestPlansReturnsACopy(t *testing.T) {
	p := New()
	a, _ := p.Plans(context.Background())
	a.GetPlans()[0].Cpu = 1
	a.DefaultPlan = "x"
	b, _ := p.Plans(context.Background())
	if !proto.Equal(b, plans.Default()) {
		t.Errorf("catalogue changed through a returned copy: %v", b)
	}
}
