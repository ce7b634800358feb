package decode

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

func testSpec() *pluginv1.Spec {
	return hclspec.Object(map[string]*pluginv1.Spec{
		"url":          hclspec.Attr("url", "string", true, "where"),
		"timeout":      hclspec.Default(hclspec.Attr("timeout", "string", false, ""), hclspec.Literal(`"10s"`)),
		"entry_points": hclspec.Default(hclspec.Attr("entry_points", "list(string)", false, ""), hclspec.Literal(`["web"]`)),
		"retries":      hclspec.Attr("retries", "number", false, ""),
		"plan": hclspec.BlockMap("plan", []string{"id"}, hclspec.Object(map[string]*pluginv1.Spec{
			"max_apps": hclspec.Attr("max_apps", "number", true, ""),
		}), ""),
		"tls": hclspec.Block("tls", false, hclspec.Object(map[string]*pluginv1.Spec{
			"insecure": hclspec.Attr("insecure", "bool", false, ""),
		}), ""),
	})
}

func parse(t *testing.T, src string) hcl.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "cfg.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return f.Body
}

func TestBody(t *testing.T) {
	spec, err := Spec(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, src string
		want      map[string]any // nil: expect an error
		errAt     string         // "line:col" of the first error
		errHas    string
	}{
		{name: "defaults", src: `url = "http://x"`, want: map[string]any{
			"url": "http://x", "timeout": "10s", "entry_points": []any{"web"}, "retries": nil, "plan": map[string]any{}, "tls": nil}},
		{name: "everything", src: "url = \"u\"\nretries = 3\nentry_points = [\"a\", \"b\"]\nplan \"free\" { max_apps = 1 }\ntls { insecure = true }\n",
			want: map[string]any{"url": "u", "timeout": "10s", "entry_points": []any{"a", "b"}, "retries": 3.0,
				"plan": map[string]any{"free": map[string]any{"max_apps": 1.0}}, "tls": map[string]any{"insecure": true}}},
		{name: "wrong type", src: "url = \"u\"\nretries = \"many\"\n", errAt: "2:11", errHas: "number is required"},
		{name: "unknown attribute", src: "url = \"u\"\nurll = \"v\"\n", errAt: "2:1", errHas: "Unsupported argument"},
		{name: "missing required", src: "retries = 1\n", errAt: "1:1", errHas: "url"},
		{name: "nested wrong type", src: "url = \"u\"\nplan \"pro\" {\n  max_apps = [1]\n}\n", errAt: "3:14", errHas: "number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, diags := Body(parse(t, c.src), spec, nil)
			if c.want == nil {
				if !diags.HasErrors() {
					t.Fatalf("want an error, got %s", raw)
				}
				d := diags[0]
				if d.Subject == nil || fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column) != c.errAt {
					t.Fatalf("error at %v, want %s: %s", d.Subject, c.errAt, diags.Error())
				}
				if !strings.Contains(diags.Error(), c.errHas) {
					t.Fatalf("error %q lacks %q", diags.Error(), c.errHas)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestNilSpecAcceptsOnlyAnEmptyBody(t *testing.T) {
	spec, err := Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	if raw, diags := Body(nil, spec, nil); diags.HasErrors() || string(raw) != "{}" {
		t.Fatalf("absent body: %s %v", raw, diags)
	}
	if _, diags := Body(parse(t, `x = 1`), spec, nil); !diags.HasErrors() {
		t.Fatal("an attribute was accepted by a plugin that takes no config")
	}
}

func TestInvalidSpecs(t *testing.T) {
	for name, s := range map[string]*pluginv1.Spec{
		"bad type":           hclspec.Attr("a", "strin", false, ""),
		"no type":            hclspec.Attr("a", "", false, ""),
		"nameless attr":      hclspec.Attr("", "string", false, ""),
		"bad literal":        hclspec.Default(hclspec.Attr("a", "string", false, ""), hclspec.Literal(`"unterminated`)),
		"variable literal":   hclspec.Default(hclspec.Attr("a", "string", false, ""), hclspec.Literal(`var.x`)),
		"empty node":         {},
		"block map no name":  hclspec.BlockMap("", []string{"id"}, nil, ""),
		"block map no label": hclspec.BlockMap("plan", nil, nil, ""),
		"default half":       {Node: &pluginv1.Spec_Default{Default: &pluginv1.Default{}}},
		"nested bad":         hclspec.Object(map[string]*pluginv1.Spec{"x": hclspec.Block("x", false, hclspec.Attr("y", "nope", false, ""), "")}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Spec(s); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestSource(t *testing.T) {
	js, diags := Source(testSpec(), []byte(`url = "u"`), "s.hcl", nil)
	if diags.HasErrors() || !strings.Contains(string(js), `"url":"u"`) {
		t.Fatalf("Source = %s, %v", js, diags)
	}
	if _, diags := Source(testSpec(), []byte(`url = `), "s.hcl", nil); !diags.HasErrors() || diags[0].Subject.Filename != "s.hcl" {
		t.Fatalf("syntax error: %v", diags)
	}
	if _, diags := Source(hclspec.Attr("a", "nope", false, ""), nil, "s.hcl", nil); !diags.HasErrors() {
		t.Fatal("invalid spec accepted")
	}
}
