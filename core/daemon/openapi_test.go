package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/userapi"
	"github.com/wisehosting/wisehosting/schema"
)

// The OpenAPI document (schema/openapi.json, embedded as schema.OpenAPI and
// served at GET /openapi.json) must describe exactly the routes the core
// serves. TestOpenAPIDocument checks its shape; TestOpenAPIDescribesEveryRoute
// compares it with the routes a daemon mounts.

// TestOpenAPIDocument checks the document's shape: an OpenAPI 3.1 document
// whose every operation has a unique operationId, a summary, declared tags,
// an explicit security (an empty list for public routes) naming declared
// schemes, responses with descriptions, a declaration of each {param} of
// its path and of nothing else in the path, and whose every $ref resolves
// inside the document.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	for _, p := range doc.problems() {
		t.Error(p)
	}
}

// TestOpenAPIDescribesEveryRoute starts a daemon with every plugin kind
// that mounts anything declared and compares the routes it serves
// (api.Server.Routes) with the document's paths × methods, both ways. It
// also checks the document against the route tables of the user-facing
// packages: a public route has `security: []` (and no other has), a
// rate-limited route documents 429, a signed-in route 401.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	cfg := testConfigWith(t, "", testStack+`
proxy {
  token = "proxy-token-for-the-openapi-test-0123"
}
plugin "proxy" "lister" {}
`)
	d, err := NewWithOptions(t.Context(), cfg, testutil.Logger(t), testPlugins())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer d.Close(context.Background())

	served := map[string]bool{}
	for _, r := range d.Routes() {
		served[routeKey(r.Method, r.Path)] = true
	}
	doc := loadOpenAPI(t)
	ops := doc.operations()
	documented := map[string]openAPIOp{}
	for _, o := range ops {
		documented[o.key()] = o
	}

	var missing, extra []string
	for k := range served {
		if _, ok := documented[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	report := func(list []string, what string) {
		if len(list) > 0 {
			sort.Strings(list)
			t.Errorf("%s:\n  %s", what, strings.Join(list, "\n  "))
		}
	}
	report(missing, "served but not described in schema/openapi.json; add each under \"paths\" (bunrouter's :param and *param "+
		"become {param}) with an operationId, a summary, tags, security ([] for a public route), a path parameter for every "+
		"{param}, its query parameters and request body, and its responses including the errors it answers "+
		"(components/responses); the existing entries show the pattern")
	report(extra, "described in schema/openapi.json but not served; remove them or correct their path or method")

	// What the user-facing packages' route tables say.
	type flags struct{ public, limited, user bool }
	want := map[string]flags{
		// The core's own public routes (core/api).
		routeKey(http.MethodGet, "/health"):           {public: true},
		routeKey(http.MethodGet, "/ready"):            {public: true},
		routeKey(http.MethodGet, api.OpenAPIPath):     {public: true},
		routeKey(http.MethodGet, "/v1/proxy/tls/ask"): {public: true},
	}
	for _, r := range d.Accounts().Routes() {
		want[routeKey(r.Method, r.Path)] = flags{public: r.Public, limited: r.Limited, user: true}
	}
	svc, err := userapi.New(userapi.Options{Store: d.Database().Store, Auth: d.Accounts(), Plans: d.Plans(),
		Jobs: d.Jobs(), Cipher: d.Database().Cipher})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range svc.Routes() {
		want[routeKey(r.Method, r.Path)] = flags{public: r.Public, limited: r.Limited, user: true}
	}
	for _, o := range ops {
		f, known := want[o.key()]
		public := o.security != nil && len(o.security) == 0
		switch {
		case public && !f.public:
			t.Errorf("%s has security: [] (public) but the route requires credentials: list the schemes it accepts "+
				"(a public core route must also be added to the test's list)", o.key())
		case known && f.public && !public:
			t.Errorf("%s is public: its security must be []", o.key())
		}
		if f.limited && !o.hasResponse("429") {
			t.Errorf("%s is rate limited: document its 429 (#/components/responses/TooManyRequests)", o.key())
		}
		if f.user && !f.public {
			if !o.hasResponse("401") {
				t.Errorf("%s needs a signed-in caller: document its 401 (#/components/responses/Unauthorized)", o.key())
			}
			for _, req := range o.security {
				for name := range req {
					if name != "bearerAuth" && name != "sessionCookie" {
						t.Errorf("%s: a user route is authenticated by bearerAuth or sessionCookie, not %s", o.key(), name)
					}
				}
			}
		}
	}
}

// routeKey is "METHOD /path/{param}" for a bunrouter pattern (:param and
// *param become {param}) or an OpenAPI path.
func routeKey(method, path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.ToUpper(method) + " " + strings.Join(segs, "/")
}

// openAPIDoc is the parsed document.
type openAPIDoc struct{ root map[string]any }

// openAPIOp is one operation of the document.
type openAPIOp struct {
	method, path string
	op           map[string]any
	// params are the path item's and the operation's parameters, resolved.
	params []map[string]any
	// security is the operation's security requirements; nil when absent.
	security []map[string]any
}

func (o openAPIOp) key() string { return routeKey(o.method, o.path) }

func (o openAPIOp) hasResponse(code string) bool {
	rs, _ := o.op["responses"].(map[string]any)
	_, ok := rs[code]
	return ok
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(schema.OpenAPI, &root); err != nil {
		t.Fatalf("schema/openapi.json is not a JSON object: %v", err)
	}
	return openAPIDoc{root: root}
}

// httpMethods are the operation keys of a path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// pathItemKeys are the other keys a path item may have.
var pathItemKeys = []string{"$ref", "summary", "description", "servers", "parameters"}

// pointer resolves a local JSON pointer (#/a/b).
func (d openAPIDoc) pointer(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q is not local to the document (#/…)", ref)
	}
	var cur any = d.root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q does not resolve: %q is not inside an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q does not resolve: no %q", ref, tok)
		}
	}
	return cur, nil
}

// resolve follows v's $ref chain, if any, to an object.
func (d openAPIDoc) resolve(v any) (map[string]any, error) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var err error
		if v, err = d.pointer(ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("a $ref chain is longer than 10")
}

// operations returns every operation, sorted by path and method.
func (d openAPIDoc) operations() []openAPIOp {
	paths, _ := d.root["paths"].(map[string]any)
	var out []openAPIOp
	for p, v := range paths {
		item, _ := v.(map[string]any)
		common, _ := item["parameters"].([]any)
		for _, m := range httpMethods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			o := openAPIOp{method: m, path: p, op: op}
			own, _ := op["parameters"].([]any)
			for _, pv := range slices.Concat(common, own) {
				if pm, err := d.resolve(pv); err == nil {
					o.params = append(o.params, pm)
				}
			}
			if sec, ok := op["security"].([]any); ok {
				o.security = []map[string]any{}
				for _, r := range sec {
					rm, _ := r.(map[string]any)
					o.security = append(o.security, rm)
				}
			}
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].path != out[j].path {
			return out[i].path < out[j].path
		}
		return out[i].method < out[j].method
	})
	return out
}

var (
	placeholderRE  = regexp.MustCompile(`\{([^{}]*)\}`)
	paramNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	responseCodeRE = regexp.MustCompile(`^([1-5][0-9][0-9]|[1-5]XX|default)$`)
)

// problems lists what is wrong with the document's shape.
func (d openAPIDoc) problems() []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	if v, _ := d.root["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		bad("openapi is %q, want 3.1.x", v)
	}
	info, _ := d.root["info"].(map[string]any)
	for _, k := range []string{"title", "version"} {
		if s, _ := info[k].(string); s == "" {
			bad("info.%s is missing", k)
		}
	}
	comps, _ := d.root["components"].(map[string]any)
	schemes, _ := comps["securitySchemes"].(map[string]any)
	if len(schemes) == 0 {
		bad("components.securitySchemes is missing")
	}
	tags := map[string]bool{}
	tagList, _ := d.root["tags"].([]any)
	for _, tv := range tagList {
		tm, _ := tv.(map[string]any)
		if name, _ := tm["name"].(string); name != "" {
			tags[name] = true
		}
	}

	// Every $ref resolves.
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"]; ok {
				s, isStr := ref.(string)
				if !isStr {
					bad("%s: $ref is not a string", at)
				} else if _, err := d.pointer(s); err != nil {
					bad("%s: %v", at, err)
				}
			}
			for k, c := range x {
				walk(at+"/"+k, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s/%d", at, i), c)
			}
		}
	}
	walk("#", d.root)

	paths, ok := d.root["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		bad("paths is missing")
	}
	for p, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			bad("paths[%q] is not an object", p)
			continue
		}
		if !strings.HasPrefix(p, "/") {
			bad("path %q does not start with /", p)
		}
		for k := range item {
			if !slices.Contains(httpMethods, k) && !slices.Contains(pathItemKeys, k) {
				bad("paths[%q] has the key %q: methods are lower case (%s)", p, k, strings.Join(httpMethods, ", "))
			}
		}
		for _, m := range placeholderRE.FindAllStringSubmatch(p, -1) {
			if !paramNameRE.MatchString(m[1]) {
				bad("path %q: {%s} is not a parameter name", p, m[1])
			}
		}
	}

	ids := map[string]string{}
	for _, o := range d.operations() {
		k := o.key()
		id, _ := o.op["operationId"].(string)
		switch {
		case id == "":
			bad("%s: operationId is missing", k)
		case ids[id] != "":
			bad("%s: operationId %q is also %s's", k, id, ids[id])
		default:
			ids[id] = k
		}
		if s, _ := o.op["summary"].(string); strings.TrimSpace(s) == "" {
			bad("%s: summary is missing", k)
		}
		opTags, _ := o.op["tags"].([]any)
		if len(opTags) == 0 {
			bad("%s: tags are missing", k)
		}
		for _, tv := range opTags {
			if name, _ := tv.(string); !tags[name] {
				bad("%s: tag %v is not declared in the top-level tags", k, tv)
			}
		}

		// Security: explicit on every operation; [] means public.
		if o.security == nil {
			bad("%s: security is missing (an empty list for a public route)", k)
		}
		for _, req := range o.security {
			if req == nil {
				bad("%s: a security requirement is not an object", k)
			}
			for name, scopes := range req {
				if _, ok := schemes[name]; !ok {
					bad("%s: security scheme %q is not in components.securitySchemes", k, name)
				}
				if _, ok := scopes.([]any); !ok {
					bad("%s: security scheme %q: the scopes must be a list", k, name)
				}
			}
		}

		// Responses, each with a description.
		rs, _ := o.op["responses"].(map[string]any)
		if len(rs) == 0 {
			bad("%s: responses are missing", k)
		}
		for code, rv := range rs {
			if !responseCodeRE.MatchString(code) {
				bad("%s: response %q is not a status code", k, code)
			}
			r, err := d.resolve(rv)
			if err != nil {
				bad("%s: response %s: %v", k, code, err)
				continue
			}
			if s, _ := r["description"].(string); s == "" {
				bad("%s: response %s has no description", k, code)
			}
		}

		// A request body has content.
		if bv, ok := o.op["requestBody"]; ok {
			b, err := d.resolve(bv)
			if err != nil {
				bad("%s: requestBody: %v", k, err)
			} else if c, _ := b["content"].(map[string]any); len(c) == 0 {
				bad("%s: requestBody has no content", k)
			}
		}

		// Parameters: well formed, unique, and the path's exactly.
		inPath := map[string]bool{}
		for _, m := range placeholderRE.FindAllStringSubmatch(o.path, -1) {
			inPath[m[1]] = true
		}
		declared := map[string]bool{}
		for _, pm := range o.params {
			name, _ := pm["name"].(string)
			in, _ := pm["in"].(string)
			if name == "" || !slices.Contains([]string{"path", "query", "header", "cookie"}, in) {
				bad("%s: a parameter has no name or an unknown location (%q %q)", k, name, in)
				continue
			}
			if declared[in+" "+name] {
				bad("%s: the %s parameter %q is declared twice", k, in, name)
			}
			declared[in+" "+name] = true
			_, hasSchema := pm["schema"]
			_, hasContent := pm["content"]
			if !hasSchema && !hasContent {
				bad("%s: the %s parameter %q has no schema", k, in, name)
			}
			if in != "path" {
				continue
			}
			if req, _ := pm["required"].(bool); !req {
				bad("%s: the path parameter %q must be required: true", k, name)
			}
			if !inPath[name] {
				bad("%s: the path parameter %q is not in the path", k, name)
			}
		}
		for name := range inPath {
			if !declared["path "+name] {
				bad("%s: {%s} is not declared as a path parameter", k, name)
			}
		}
	}
	sort.Strings(out)
	return out
}
